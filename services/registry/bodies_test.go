package registry_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sendWhole writes the request and its whole body before reading anything, as most clients
// do, and returns the answer; a connection reset while sending or reading fails the test
// (the report: the documented 413 was never seen). chunked sends no Content-Length, so the
// server learns the size only by reading.
func sendWhole(t *testing.T, addr, method, path, token string, body []byte, chunked bool) (int, mlflowErr) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	w := bufio.NewWriterSize(c, 64<<10)
	fmt.Fprintf(w, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n", method, path)
	if token != "" {
		fmt.Fprintf(w, "Authorization: Bearer %s\r\n", token)
	}
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
		t.Fatalf("writing the body failed (%v): the connection was reset before the answer could be read", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	var e mlflowErr
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("%d: not an MLflow JSON error: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, e
}

// A 12 MB log-batch — over the registry's 8 MiB limit — gets a readable MLflow-shaped 413
// whether the size is announced or only found by reading. 24 MB too: what is left after the
// 8 MiB the handler reads no longer fits in loopback socket buffers, so only the server's
// drain lets the client finish sending.
func TestOversizedLogBatchGetsAReadable413(t *testing.T) {
	s := start(t)
	addr := strings.TrimPrefix(s.url, "http://")
	for _, tc := range []struct {
		size    int
		chunked bool
	}{{12 << 20, false}, {12 << 20, true}, {24 << 20, false}, {24 << 20, true}} {
		big := append(append([]byte(`{"run_id":"x","metrics":[{"key":"`), bytes.Repeat([]byte("m"), tc.size)...), `"}]}`...)
		t.Run(fmt.Sprintf("%dMB chunked=%v", tc.size>>20, tc.chunked), func(t *testing.T) {
			status, e := sendWhole(t, addr, "POST", api+"runs/log-batch", writerToken, big, tc.chunked)
			if status != http.StatusRequestEntityTooLarge || e.ErrorCode != "INVALID_PARAMETER_VALUE" || !strings.Contains(e.Message, "8388608") {
				t.Fatalf("%d %+v", status, e)
			}
		})
	}
}

// An artifact upload over MAX_ARTIFACT_BYTES (1 MiB here) — refused from its Content-Length
// before reading, or found too large while streaming — and an upload refused for its missing
// token both reach a client that sends 12 MB before reading.
func TestOversizedArtifactUploadGetsAReadableAnswer(t *testing.T) {
	t.Setenv("FLYWHEEL_REGISTRY_MAX_ARTIFACT_BYTES", "1048576")
	s := start(t)
	addr := strings.TrimPrefix(s.url, "http://")
	big := bytes.Repeat([]byte("a"), 12<<20)
	path := "/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/model.bin"
	for _, tc := range []struct {
		name, token string
		chunked     bool
		status      int
		code, words string
	}{
		{"announced", writerToken, false, 413, "INVALID_PARAMETER_VALUE", "1048576"},
		{"streamed", writerToken, true, 413, "INVALID_PARAMETER_VALUE", "1048576"},
		{"no token", "", false, 401, "UNAUTHENTICATED", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, e := sendWhole(t, addr, "PUT", path, tc.token, big, tc.chunked)
			if status != tc.status || e.ErrorCode != tc.code || !strings.Contains(e.Message, tc.words) {
				t.Fatalf("%d %+v; want %d %s %q", status, e, tc.status, tc.code, tc.words)
			}
		})
	}
}
