package httpx_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/flywheel-ml/flywheel/platform/httpx"
)

const limit = 8 << 20

type testServer struct {
	addr string
	srv  *httpx.Server
	ran  atomic.Int64 // how many times /read's handler ran
}

func serve(t *testing.T, log *zap.Logger, tokens string) *testServer {
	t.Helper()
	s, err := httpx.NewServer(httpx.Config{Addr: "127.0.0.1:0", MaxBodyBytes: limit, ShutdownTimeout: time.Second},
		httpx.AuthConfig{Tokens: tokens}, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: s}
	s.Handle("POST /read", "", func(w http.ResponseWriter, r *http.Request) error {
		ts.ran.Add(1)
		body, err := httpx.ReadBody(r)
		if err != nil {
			return err
		}
		httpx.WriteJSON(w, 200, map[string]int{"bytes": len(body)})
		return nil
	})
	s.Handle("POST /down", "", func(http.ResponseWriter, *http.Request) error {
		return httpx.Unavailable("redis is down", fmt.Errorf("dial tcp: connection refused"))
	})
	s.Handle("POST /bad", "", func(http.ResponseWriter, *http.Request) error {
		return httpx.BadRequest("bad", "no")
	})
	s.Handle("POST /bug", "", func(http.ResponseWriter, *http.Request) error { return fmt.Errorf("nil map") })
	s.Handle("POST /panic", "", func(http.ResponseWriter, *http.Request) error { panic("boom") })
	s.Handle("POST /secret", httpx.ScopeWrite, func(w http.ResponseWriter, r *http.Request) error { return nil })
	// Like the registry's MLflow routes: no server auth or limit, its own MaxBytesReader.
	s.HandleRaw("POST /raw", func(w http.ResponseWriter, r *http.Request) error {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		_, err := io.ReadAll(r.Body)
		return err
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	ts.addr = ln.Addr().String()
	return ts
}

type rawAnswer struct {
	status int
	close  bool // Connection: close
	body   string
}

// rawPost writes the request line, headers and the whole body before reading anything, as
// most clients do, and returns the answer. chunked sends the body without a Content-Length,
// so the server learns its size only by reading it.
func rawPost(t *testing.T, addr, path string, body []byte, chunked bool, extra string) rawAnswer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	w := bufio.NewWriterSize(c, 64<<10)
	fmt.Fprintf(w, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%s", path, extra)
	if chunked {
		fmt.Fprintf(w, "Transfer-Encoding: chunked\r\n\r\n")
		for b := body; len(b) > 0; {
			n := min(len(b), 32<<10)
			fmt.Fprintf(w, "%x\r\n%s\r\n", n, b[:n])
			b = b[n:]
		}
		fmt.Fprintf(w, "0\r\n\r\n")
	} else {
		fmt.Fprintf(w, "Content-Length: %d\r\n\r\n", len(body))
		_, _ = w.Write(body)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("%s: writing the body failed (%v): the server reset the connection before the client could read its answer", path, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: reading the answer failed: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading the answer's body failed: %v", path, err)
	}
	return rawAnswer{status: resp.StatusCode, close: resp.Close, body: string(b)}
}

func errorCode(t *testing.T, body string) (code, msg string) {
	t.Helper()
	var eb struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body), &eb); err != nil {
		t.Fatalf("not a JSON error: %q", body)
	}
	return eb.Error.Code, eb.Error.Message
}

// The report: a 12 MB body ended in a connection reset instead of the documented 413. Every
// early answer — over the limit, refused, unknown route, starting — is read by a client that
// sends the whole body first.
func TestOversizedBodiesGetAReadableAnswer(t *testing.T) {
	ts := serve(t, zap.NewNop(), "tok:read")
	big := bytes.Repeat([]byte("x"), 12<<20)
	for _, c := range []struct {
		name, path  string
		chunked     bool
		extra       string
		status      int
		code, words string
	}{
		{"handler reads past the limit", "/read", true, "", 413, "body_too_large", "limit of 8388608 bytes"},
		{"handler reads past the limit, 24 MB", "/read", true, "", 413, "body_too_large", "limit of 8388608 bytes"},
		{"announced over the limit", "/read", false, "", 413, "body_too_large", "limit of 8388608 bytes"},
		{"no token, body unread", "/secret", false, "", 401, "unauthenticated", ""},
		{"wrong scope, body unread", "/secret", true, "Authorization: Bearer tok\r\n", 403, "forbidden", ""},
		{"unknown route", "/nowhere", false, "", 404, "not_found", ""},
		{"HandleRaw with its own MaxBytesReader", "/raw", true, "", 413, "body_too_large", "limit of 1048576 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ran := ts.ran.Load()
			body := big
			if strings.HasSuffix(c.name, "24 MB") {
				// Beyond what loopback socket buffers hold once the handler stopped at 8 MiB.
				body = bytes.Repeat([]byte("x"), 24<<20)
			}
			a := rawPost(t, ts.addr, c.path, body, c.chunked, c.extra)
			code, msg := errorCode(t, a.body)
			if a.status != c.status || code != c.code || !strings.Contains(msg, c.words) {
				t.Fatalf("%d %s; want %d %s %q", a.status, a.body, c.status, c.code, c.words)
			}
			if !a.close {
				t.Error("an answer sent with the body unread does not say Connection: close")
			}
			if c.name == "announced over the limit" && ts.ran.Load() != ran {
				t.Error("the handler ran for a body announced over the limit")
			}
		})
	}

	t.Run("starting", func(t *testing.T) {
		ts.srv.SetStarting(true)
		defer ts.srv.SetStarting(false)
		a := rawPost(t, ts.addr, "/not-yet", big, false, "")
		if code, _ := errorCode(t, a.body); a.status != 503 || code != "starting" {
			t.Fatalf("%d %s", a.status, a.body)
		}
	})

	t.Run("http.Client", func(t *testing.T) {
		// Go's own client sends the body, then reads.
		resp, err := http.Post("http://"+ts.addr+"/read", "application/json", bytes.NewReader(big))
		if err != nil {
			t.Fatalf("http.Client: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(b), "limit of 8388608 bytes") {
			t.Fatalf("http.Client: %d %s", resp.StatusCode, b)
		}
	})

	t.Run("http.Client with Expect: 100-continue", func(t *testing.T) {
		// The client waits for 100 Continue; refused, it never sends the body, and the
		// server must not wait for it.
		tr := &http.Transport{ExpectContinueTimeout: 10 * time.Second}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("POST", "http://"+ts.addr+"/secret", bytes.NewReader(big))
		req.Header.Set("Expect", "100-continue")
		start := time.Now()
		resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || time.Since(start) > 5*time.Second {
			t.Fatalf("%d after %v", resp.StatusCode, time.Since(start))
		}
	})
}

// A body beyond the drain bound (4 × the limit) is not read to its end: the connection is
// closed, and the server is not held up.
func TestBodiesBeyondTheDrainBoundCloseTheConnection(t *testing.T) {
	ts := serve(t, zap.NewNop(), "")
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 1<<30)
	chunk := make([]byte, 1<<20)
	var sent int
	for sent < 1<<30 {
		n, err := c.Write(chunk)
		sent += n
		if err != nil {
			break
		}
	}
	if sent >= 1<<30 {
		t.Fatal("the server read a 1 GiB body to its end")
	}
	if sent < 4*limit {
		t.Fatalf("the connection was closed after %d bytes, before the drain bound", sent)
	}
}

// Small bodies keep the connection alive as before.
func TestKeepAliveForReadBodies(t *testing.T) {
	ts := serve(t, zap.NewNop(), "")
	for range 3 {
		resp, err := http.Post("http://"+ts.addr+"/read", "application/json", strings.NewReader(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("%d close=%v", resp.StatusCode, resp.Close)
		}
	}
}

func requestLines(logs *observer.ObservedLogs, level zapcore.Level, prefix string) []observer.LoggedEntry {
	return logs.FilterLevelExact(level).Filter(func(e observer.LoggedEntry) bool {
		return strings.HasPrefix(e.Message, prefix)
	}).All()
}

func post(t *testing.T, addr, path string) int {
	t.Helper()
	resp, err := http.Post("http://"+addr+path, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestDependencyDownIsOneQuietLine(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	ts := serve(t, zap.New(core), "")
	for range 20 {
		if code := post(t, ts.addr, "/down"); code != 503 {
			t.Fatalf("status %d", code)
		}
	}
	warn := requestLines(logs, zapcore.WarnLevel, "request")
	if len(warn) != 1 || !strings.Contains(fmt.Sprint(warn[0].ContextMap()["error"]), "connection refused") {
		t.Fatalf("20 failures in the 10 s window logged %d warn lines, want one with the error: %v", len(warn), warn)
	}
	if n := len(requestLines(logs, zapcore.DebugLevel, "request")); n != 19 {
		t.Fatalf("the lines held back are still written at debug: %d, want 19", n)
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

// A readiness probe answering 503 every second logs one warn line per 10 s.
func TestReadinessProbesDoNotFlood(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	ts := serve(t, zap.New(core), "")
	ts.srv.AddCheck("redis", func(context.Context) error { return fmt.Errorf("connection refused") })
	for range 10 {
		resp, err := http.Get("http://" + ts.addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := len(requestLines(logs, zapcore.WarnLevel, "request")); n != 1 {
		t.Fatalf("10 probes answered 503 logged %d warn lines, want 1", n)
	}
}

// One line per request: 4xx at info (rate-limited per route and status), a bug at error
// without a stack, a panic at error with its stack.
func TestFailureLogLevels(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	ts := serve(t, zap.New(core), "tok:read")
	for range 5 {
		post(t, ts.addr, "/bad")
	}
	post(t, ts.addr, "/secret") // 401: another status, its own window
	post(t, ts.addr, "/bug")
	post(t, ts.addr, "/panic")
	info := requestLines(logs, zapcore.InfoLevel, "request")
	if len(info) != 2 || info[0].ContextMap()["status"] != int64(400) || info[1].ContextMap()["status"] != int64(401) ||
		info[0].ContextMap()["error"] != "no" {
		t.Errorf("five 400s and a 401 are one info line each per 10 s, with the error, got %v", info)
	}
	bug := requestLines(logs, zapcore.ErrorLevel, "request")
	if len(bug) != 1 || bug[0].Stack != "" || bug[0].ContextMap()["route"] != "POST /bug" || bug[0].ContextMap()["error"] != "nil map" {
		t.Errorf("a 500 failure is one error line with its error and without a stack, got %v", bug)
	}
	panics := requestLines(logs, zapcore.ErrorLevel, "handler panicked")
	if len(panics) != 1 || !strings.Contains(panics[0].ContextMap()["stack"].(string), "drain_test") {
		t.Errorf("a panic is logged with its stack, got %v", panics)
	}
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 2 {
		t.Errorf("a bug and a panic are one error line each, got %d", n)
	}
	for _, e := range requestLines(logs, zapcore.WarnLevel, "request") {
		t.Errorf("no warn line expected here: %s %v", e.Message, e.ContextMap())
	}
}
