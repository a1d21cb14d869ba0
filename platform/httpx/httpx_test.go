package httpx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/httpx"
)

func newServer(t *testing.T, tokens string) *httpx.Server {
	t.Helper()
	s, err := httpx.NewServer(httpx.Config{Addr: "127.0.0.1:0", MaxBodyBytes: 64, ShutdownTimeout: time.Second},
		httpx.AuthConfig{Tokens: tokens}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("POST /v1/echo", httpx.ScopeIngest, func(w http.ResponseWriter, r *http.Request) error {
		body, err := httpx.ReadBody(r)
		if err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]int{"bytes": len(body)})
		return nil
	})
	s.Handle("GET /v1/boom", "", func(http.ResponseWriter, *http.Request) error { panic("boom") })
	s.Handle("GET /v1/missing/{id}", "", func(_ http.ResponseWriter, r *http.Request) error {
		return httpx.NotFound("not_found", "no thing "+r.PathValue("id"))
	})
	s.Handle("GET /v1/internal", "", func(http.ResponseWriter, *http.Request) error { return errors.New("secret dsn") })
	return s
}

type errBody struct {
	Error struct{ Code, Message string } `json:"error"`
}

func do(t *testing.T, h http.Handler, method, path, token, body string) (int, errBody) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var eb errBody
	_ = json.Unmarshal(rec.Body.Bytes(), &eb)
	if rec.Code >= 400 && (eb.Error.Code == "" || rec.Header().Get("Content-Type") != "application/json") {
		t.Errorf("%s %s: error without a JSON body: %q", method, path, rec.Body.String())
	}
	return rec.Code, eb
}

func TestAuthScopesAndErrors(t *testing.T) {
	s := newServer(t, "ingester:ingest;reader:read;admin:*")
	cases := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"no token", "POST", "/v1/echo", "", "{}", 401, "unauthenticated"},
		{"unknown token", "POST", "/v1/echo", "nope", "{}", 401, "unauthenticated"},
		{"wrong scope", "POST", "/v1/echo", "reader", "{}", 403, "forbidden"},
		{"right scope", "POST", "/v1/echo", "ingester", "{}", 200, ""},
		{"wildcard", "POST", "/v1/echo", "admin", "{}", 200, ""},
		{"body over limit", "POST", "/v1/echo", "admin", strings.Repeat("x", 65), 413, "body_too_large"},
		{"panic", "GET", "/v1/boom", "", "", 500, "internal"},
		{"not found", "GET", "/v1/missing/42", "", "", 404, "not_found"},
		{"internal hides details", "GET", "/v1/internal", "", "", 500, "internal"},
		{"healthz is open", "GET", "/healthz", "", "", 200, ""},
		{"metrics is open", "GET", "/metrics", "", "", 200, ""},
	}
	for _, tc := range cases {
		status, eb := do(t, s, tc.method, tc.path, tc.token, tc.body)
		if status != tc.status || eb.Error.Code != tc.code {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, status, eb.Error.Code, tc.status, tc.code)
		}
		if strings.Contains(eb.Error.Message, "secret dsn") {
			t.Errorf("%s: internal error leaked: %s", tc.name, eb.Error.Message)
		}
	}
}

func TestReadyzReportsEachCheck(t *testing.T) {
	s := newServer(t, "")
	s.AddCheck("kafka", func(context.Context) error { return nil })
	status, _ := do(t, s, "GET", "/readyz", "", "")
	if status != 200 {
		t.Fatalf("ready: got %d", status)
	}
	s.AddCheck("redis", func(context.Context) error { return errors.New("connection refused") })
	req := httptest.NewRequest("GET", "/readyz", nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var body struct {
		Status string
		Checks map[string]string
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 503 || body.Checks["kafka"] != "ok" || body.Checks["redis"] != "connection refused" {
		t.Fatalf("got %d %+v", rec.Code, body)
	}
}

func TestMetricsAreValidPrometheusText(t *testing.T) {
	s := newServer(t, "")
	do(t, s, "POST", "/v1/echo", "", "{}")
	req := httptest.NewRequest("GET", "/metrics", nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("invalid exposition: %v", err)
	}
	h, ok := families["flywheel_http_request_duration_seconds"]
	if !ok {
		t.Fatal("latency histogram missing")
	}
	found := false
	for _, m := range h.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && l.GetValue() == "POST /v1/echo" {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("latency histogram lacks the route label")
	}
}

func TestServeDrainsInFlightRequestsOnShutdown(t *testing.T) {
	s := newServer(t, "")
	started := make(chan struct{})
	s.Handle("GET /v1/slow", "", func(w http.ResponseWriter, _ *http.Request) error {
		close(started)
		time.Sleep(200 * time.Millisecond)
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"done": "yes"})
		return nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	result := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/v1/slow")
		if err != nil {
			result <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- string(b)
	}()
	<-started
	cancel()
	if got := <-result; !strings.Contains(got, `"done":"yes"`) {
		t.Fatalf("in-flight request was cut: %s", got)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

func TestParseTokensRejectsMalformedEntries(t *testing.T) {
	if _, err := httpx.ParseTokens("justatoken"); err == nil {
		t.Fatal("want an error")
	}
	if err := (httpx.AuthConfig{Tokens: "a:"}).Validate(); err == nil || !strings.Contains(err.Error(), "FLYWHEEL_AUTH_TOKENS") {
		t.Fatalf("want an error naming the variable, got %v", err)
	}
}
