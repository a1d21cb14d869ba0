package httpx

import (
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logEvery is how often an expected failure (4xx, 503) of one route and status is logged;
// the line says how many like it were held back since the last.
const logEvery = 10 * time.Second

// levelFor is the level of a request's line: client errors are expected (info), a dependency
// being down or the service starting is not a bug (warn), any other 5xx is (error).
func levelFor(status int) zapcore.Level {
	switch {
	case status == http.StatusServiceUnavailable:
		return zapcore.WarnLevel
	case status >= 500:
		return zapcore.ErrorLevel
	case status >= 400:
		return zapcore.InfoLevel
	default:
		return zapcore.DebugLevel
	}
}

// expected reports whether a status is a failure that repeats with its cause (a bad client,
// a dependency down) and so is rate-limited; bugs (other 5xx) are always logged.
func expected(status int) bool {
	return status >= 400 && (status < 500 || status == http.StatusServiceUnavailable)
}

// noteFailure attaches a handler's error to the request's one log line, which ServeHTTP
// writes; it reports false when w is not the server's recorder (not served by ServeHTTP).
func noteFailure(w http.ResponseWriter, err error) bool {
	for w != nil {
		if rec, ok := w.(*statusRecorder); ok {
			rec.err = err
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
	return false
}

// logFailure records a handler's error for the request's line.
func (s *Server) logFailure(w http.ResponseWriter, r *http.Request, err error) {
	if noteFailure(w, err) {
		return
	}
	status := http.StatusInternalServerError
	if he := asError(err); he != nil {
		status = he.Status
	}
	if ce := s.log.Check(levelFor(status), "request failed"); ce != nil {
		ce.Write(zap.String("route", r.Pattern), zap.Int("status", status), zap.String("error", err.Error()))
	}
}

// logRequest writes the request's one line: debug for successes, then by levelFor, with the
// handler's error. Expected failures are rate-limited per route and status; a line held back
// is still written at debug. None carries a stack trace (panics are logged apart, with theirs).
func (s *Server) logRequest(r *http.Request, route string, rec *statusRecorder, elapsed time.Duration) {
	level := levelFor(rec.status)
	held := 0
	if expected(rec.status) {
		ok, n := s.limit.Allow(route + " " + strconv.Itoa(rec.status))
		if !ok {
			level = zapcore.DebugLevel
		}
		held = n
	}
	ce := s.log.Check(level, "request")
	if ce == nil {
		return
	}
	fields := []zap.Field{zap.String("method", r.Method), zap.String("route", route), zap.String("path", r.URL.Path),
		zap.Int("status", rec.status), zap.Duration("elapsed", elapsed)}
	if rec.err != nil {
		fields = append(fields, zap.String("error", rec.err.Error()))
	}
	if held > 0 {
		fields = append(fields, zap.Int("similar_lines_held_back", held))
	}
	ce.Write(fields...)
}
