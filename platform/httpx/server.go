// Package httpx is the HTTP runtime every service shares: JSON errors, bearer-token scopes,
// body limits, request logging, latency histograms, and the /healthz, /readyz and /metrics
// endpoints.
package httpx

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/logging"
)

// Config is one service's HTTP listener. Services embed it with their own prefix
// (FLYWHEEL_INGEST_ADDR, FLYWHEEL_FEATURES_ADDR, ...).
type Config struct {
	Addr            string        `env:"ADDR" usage:"HTTP listen address"`
	MaxBodyBytes    int64         `env:"MAX_BODY_BYTES" default:"8388608" usage:"largest accepted request body"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"8s" usage:"how long in-flight requests may finish after SIGTERM"`
}

// Validate checks the listen address and limits.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return config.Invalid("ADDR", "%q is not host:port", c.Addr)
	}
	if c.MaxBodyBytes <= 0 {
		return config.Invalid("MAX_BODY_BYTES", "must be positive, got %d", c.MaxBodyBytes)
	}
	return nil
}

// AuthConfig holds the bearer tokens shared by every service.
type AuthConfig struct {
	Tokens string `env:"AUTH_TOKENS" secret:"true" usage:"bearer tokens with scopes: token:scope,scope;token2:*  (empty disables auth)"`
}

// Validate parses the token list.
func (c AuthConfig) Validate() error {
	if _, err := ParseTokens(c.Tokens); err != nil {
		return config.Invalid("AUTH_TOKENS", "%v; use token:scope,scope;token2:*", err)
	}
	return nil
}

// HandlerFunc is an HTTP handler that returns its error instead of writing it, so errors are
// mapped to statuses and logged in one place.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Check is a readiness probe of one dependency.
type Check func(ctx context.Context) error

// Server is a service's HTTP server.
type Server struct {
	cfg     Config
	log     *zap.Logger
	tokens  Tokens
	mux     *http.ServeMux
	latency *prometheus.HistogramVec

	mu     sync.Mutex
	checks map[string]Check

	// starting is set while the service opens its dependencies and registers its routes.
	starting atomic.Bool
	limit    *logging.Limiter
}

// NewServer builds the server and registers its own endpoints. reg gets the request metrics
// and is served at /metrics.
func NewServer(cfg Config, auth AuthConfig, log *zap.Logger, reg *prometheus.Registry) (*Server, error) {
	tokens, err := ParseTokens(auth.Tokens)
	if err != nil {
		return nil, fmt.Errorf("parse auth tokens: %w", err)
	}
	s := &Server{
		cfg:    cfg,
		log:    log.Named("http"),
		tokens: tokens,
		mux:    http.NewServeMux(),
		checks: map[string]Check{},
		limit:  logging.NewLimiter(logEvery),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flywheel_http_request_duration_seconds",
			Help:    "HTTP request latency by route, method and status code.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18),
		}, []string{"route", "method", "code"}),
	}
	if err := reg.Register(s.latency); err != nil {
		return nil, fmt.Errorf("register http metrics: %w", err)
	}
	if !tokens.Enabled() {
		s.log.Warn("auth disabled: FLYWHEEL_AUTH_TOKENS is empty, every request is allowed")
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// Profiles for operators; they reveal internals, so they need the admin scope.
	s.Handle("GET /debug/pprof/", ScopeAdmin, wrap(pprof.Index))
	s.Handle("GET /debug/pprof/profile", ScopeAdmin, wrap(pprof.Profile))
	s.Handle("GET /debug/pprof/trace", ScopeAdmin, wrap(pprof.Trace))
	return s, nil
}

func wrap(h http.HandlerFunc) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error { h(w, r); return nil }
}

// AddCheck registers a dependency that must answer for /readyz to report ready.
func (s *Server) AddCheck(name string, check Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

// Authorize checks that the request's bearer token grants scope; the 401 or 403 *Error to
// answer when it does not.
func (s *Server) Authorize(r *http.Request, scope string) *Error {
	status, ok := s.tokens.Allow(r, scope)
	if ok {
		return nil
	}
	code, msg := "unauthenticated", "a bearer token is required"
	if status == http.StatusForbidden {
		code, msg = "forbidden", "the token lacks the "+scope+" scope"
	} else if r.Header.Get("Authorization") != "" {
		msg = "the bearer token is not known"
	}
	return &Error{Status: status, Code: code, Message: msg}
}

// HandleRaw registers h for pattern without the server's token check and body limit, for
// handlers that apply their own: MLflow-shaped auth errors, streamed artifact uploads. Errors
// h returns are still logged and written.
func (s *Server) HandleRaw(pattern string, h HandlerFunc) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.logFailure(w, r, err)
			WriteError(w, err)
		}
	}))
}

// Handle registers h for pattern ("POST /v1/things/{id}"), requiring scope ("" for none).
func (s *Server) Handle(pattern, scope string, h HandlerFunc) {
	s.mux.Handle(pattern, s.authorize(scope, h))
}

func (s *Server) authorize(scope string, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.Authorize(r, scope); err != nil {
			WriteError(w, err)
			return
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			// Announced too large: answer without reading it (ServeHTTP drains what it can,
			// so the client still reads the answer).
			WriteError(w, &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
				Message: "request body of " + itoa(r.ContentLength) + " bytes exceeds the limit of " + itoa(s.cfg.MaxBodyBytes) + " bytes"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		if err := h(w, r); err != nil {
			s.logFailure(w, r, err)
			WriteError(w, err)
		}
	})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	s.mu.Unlock()

	results := make(map[string]string, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Go(func() {
			status := "ok"
			if err := check(ctx); err != nil {
				status = err.Error()
			}
			mu.Lock()
			results[name] = status
			mu.Unlock()
		})
	}
	wg.Wait()
	code, overall := http.StatusOK, "ready"
	for _, v := range results {
		if v != "ok" {
			code, overall = http.StatusServiceUnavailable, "not ready"
		}
	}
	WriteJSON(w, code, map[string]any{"status": overall, "checks": results})
}

// SetStarting marks the service as starting (true) or started (false). While starting, a
// request for a route not registered yet answers 503 "starting" with Retry-After instead
// of 404.
func (s *Server) SetStarting(v bool) { s.starting.Store(v) }

// ServeHTTP runs the full middleware chain; tests use it with httptest.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// The handler reads through body, which notes how far it got; the original stays
	// reachable for the drain even when the handler wraps r.Body in http.MaxBytesReader.
	body := &trackedBody{ReadCloser: r.Body}
	if r.Body != nil {
		r.Body = body
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK, body: body}
	defer func() {
		if body.ReadCloser != nil {
			r.Body = body.ReadCloser // the server's own bookkeeping expects its body back
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		if p := recover(); p != nil {
			// A panic is a bug: its one line carries the stack.
			s.log.Error("handler panicked", zap.String("method", r.Method), zap.String("route", route),
				zap.String("path", r.URL.Path), zap.Any("panic", p), zap.Stack("stack"))
			if !rec.wrote {
				WriteError(rec, &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"})
			}
		} else {
			s.logRequest(r, route, rec, elapsed)
		}
		s.latency.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Observe(elapsed.Seconds())
		s.drain(rec, r, body)
	}()
	// One route lookup decides the unmatched cases; ServeHTTP then sets the pattern and path
	// values for the handler.
	if _, pattern := s.mux.Handler(r); pattern == "" {
		if s.starting.Load() {
			// The route may simply not be registered yet: a 404 would tell a client the
			// resource does not exist, when it should come back in a moment.
			rec.Header().Set("Retry-After", "1")
			WriteError(rec, &Error{Status: http.StatusServiceUnavailable, Code: "starting",
				Message: "the service is starting (waiting for its dependencies); retry shortly"})
			return
		}
		s.unmatched(rec, r)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// unmatched answers a request no route takes in JSON, like every other error: 405 with Allow
// when the path exists for other methods, else 404.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + strings.Join(allow, ", ")})
		return
	}
	WriteError(w, NotFound("not_found", "no route "+r.Method+" "+r.URL.Path))
}

// Run listens and serves until ctx is cancelled, then lets in-flight requests finish within
// the shutdown timeout.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (tests use port 0).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("listening", zap.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}
