package httpx_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/flywheel-ml/flywheel/platform/httpx"
)

func serve(t *testing.T, log *zap.Logger, tokens string) (string, *httpx.Server) {
	t.Helper()
	s, err := httpx.NewServer(httpx.Config{Addr: "127.0.0.1:0", MaxBodyBytes: 8 << 20, ShutdownTimeout: time.Second},
		httpx.AuthConfig{Tokens: tokens}, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("POST /read", "", func(w http.ResponseWriter, r *http.Request) error {
		_, err := httpx.ReadBody(r)
		if err != nil {
			return err
		}
		httpx.WriteJSON(w, 200, map[string]string{"ok": "yes"})
		return nil
	})
	s.Handle("POST /down", "", func(http.ResponseWriter, *http.Request) error {
		return httpx.Unavailable("redis is down", fmt.Errorf("dial tcp: connection refused"))
	})
	s.Handle("POST /secret", httpx.ScopeWrite, func(w http.ResponseWriter, r *http.Request) error { return nil })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), s
}

// rawPost writes the request line, headers and the whole body before reading anything, as
// most clients do, and returns the status line and body of the answer.
func rawPost(t *testing.T, addr, path string, body []byte, contentLength int64, extra string) (string, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n", path, contentLength, extra)
	if _, err := c.Write(body); err != nil {
		t.Fatalf("%s: writing the body failed (%v): the server reset the connection before the client could read its answer", path, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: reading the answer failed: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Status, string(b)
}

func TestOversizedBodiesGetAReadableAnswer(t *testing.T) {
	addr, _ := serve(t, zap.NewNop(), "tok:read")
	big := bytes.Repeat([]byte("x"), 12<<20)
	for _, c := range []struct{ path, extra, status, code string }{
		{"/read", "", "413", "body_too_large"},                           // the handler reads and hits the limit
		{"/nowhere", "", "404", ""},                                      // an unknown route never reads
		{"/secret", "Authorization: Bearer tok\r\n", "403", "forbidden"}, // refused before reading
	} {
		status, body := rawPost(t, addr, c.path, big, int64(len(big)), c.extra)
		if !strings.HasPrefix(status, c.status) || !strings.Contains(body, c.code) {
			t.Errorf("%s: %s %s; want %s %s", c.path, status, body, c.status, c.code)
		}
	}
	// Go's own client sends the body, then reads.
	resp, err := http.Post("http://"+addr+"/read", "application/json", bytes.NewReader(big))
	if err != nil {
		t.Fatalf("http.Client: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(b), "limit of 8388608 bytes") {
		t.Fatalf("http.Client: %d %s", resp.StatusCode, b)
	}
}

func TestDependencyDownIsOneQuietLine(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	addr, _ := serve(t, zap.New(core), "")
	for range 20 {
		resp, err := http.Post("http://"+addr+"/down", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	warn := logs.FilterLevelExact(zapcore.WarnLevel).Filter(func(e observer.LoggedEntry) bool {
		return strings.HasPrefix(e.Message, "request")
	}).All()
	if len(warn) != 2 { // one "request failed" and one access line in the 10 s window
		t.Fatalf("20 failures logged %d warn lines, want 2: %v", len(warn), warn)
	}
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 0 {
		t.Fatalf("a dependency being down is not an error-level event, got %d", n)
	}
	for _, e := range logs.All() {
		if e.Stack != "" {
			t.Fatalf("no stack traces for expected failures: %s", e.Message)
		}
	}
}
