package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" && r.URL.RawQuery == "verbose=1" {
			_, _ = w.Write([]byte("ok"))
			return
		}
		http.Error(w, "waiting for kafka [kafka:9092]", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	status, body, err := probe(srv.URL+"/readyz?verbose=1", time.Second)
	if err != nil || status != 200 || body != "ok" {
		t.Fatalf("ready: got %d %q %v", status, body, err)
	}
	status, body, err = probe(srv.URL+"/readyz", time.Second)
	if err != nil || status != 503 || !strings.Contains(body, "waiting for kafka") {
		t.Fatalf("not ready: got %d %q %v", status, body, err)
	}
}

func TestProbeErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	for _, raw := range []string{"http://" + addr + "/readyz", "https://example.com/", "127.0.0.1:8084/readyz", "http://"} {
		if _, _, err := probe(raw, 500*time.Millisecond); err == nil {
			t.Errorf("%s: no error", raw)
		}
	}
}
