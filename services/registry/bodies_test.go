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

// A 12 MB log-batch — over the registry's 8 MiB limit — gets a readable MLflow-shaped 413
// even from a client that sends the whole body before reading the answer (it used to be a
// connection reset), whether the size is announced or only found by reading. 24 MB too:
// what is left after the 8 MiB the handler reads no longer fits in loopback socket buffers,
// so only the server's drain lets the client finish sending.
func TestOversizedLogBatchGetsAReadable413(t *testing.T) {
	s := start(t)
	addr := strings.TrimPrefix(s.url, "http://")
	for _, tc := range []struct {
		size    int
		chunked bool
	}{{12 << 20, false}, {12 << 20, true}, {24 << 20, false}, {24 << 20, true}} {
		big := append(append([]byte(`{"run_id":"x","metrics":[{"key":"`), bytes.Repeat([]byte("m"), tc.size)...), `"}]}`...)
		chunked := tc.chunked
		t.Run(fmt.Sprintf("%dMB chunked=%v", tc.size>>20, chunked), func(t *testing.T) {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			w := bufio.NewWriterSize(c, 64<<10)
			fmt.Fprintf(w, "POST %sruns/log-batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n", api, writerToken)
			if chunked {
				fmt.Fprintf(w, "Transfer-Encoding: chunked\r\n\r\n")
				for b := big; len(b) > 0; {
					n := min(len(b), 32<<10)
					fmt.Fprintf(w, "%x\r\n%s\r\n", n, b[:n])
					b = b[n:]
				}
				fmt.Fprintf(w, "0\r\n\r\n")
			} else {
				fmt.Fprintf(w, "Content-Length: %d\r\n\r\n", len(big))
				_, _ = w.Write(big)
			}
			if err := w.Flush(); err != nil {
				t.Fatalf("writing the body failed (%v): the connection was reset before the answer could be read", err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading the answer's body: %v", err)
			}
			var e mlflowErr
			if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge ||
				e.ErrorCode != "INVALID_PARAMETER_VALUE" || !strings.Contains(e.Message, "8388608") {
				t.Fatalf("%d %s (%v)", resp.StatusCode, body, err)
			}
		})
	}
}
