package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	pathpkg "path"
	"strconv"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/httpx"
)

// APIPath is where MLflow's artifact proxy API lives (mlflow server --serve-artifacts).
const APIPath = "/api/2.0/mlflow-artifacts/artifacts"

// Route is one endpoint of the artifact API: a Go ServeMux pattern, the scope its bearer
// token needs, and the handler.
type Route struct {
	Pattern string
	Scope   string
	Handler httpx.HandlerFunc
}

// Routes returns MLflow's artifact proxy API over s:
//
//	PUT    /api/2.0/mlflow-artifacts/artifacts/{path...}  body = the bytes     → {}
//	GET    /api/2.0/mlflow-artifacts/artifacts/{path...}                      → the bytes
//	GET    /api/2.0/mlflow-artifacts/artifacts?path=<dir>                     → {"files":[...]}
//	DELETE /api/2.0/mlflow-artifacts/artifacts/{path...}                      → {}
//
// Errors are answered in MLflow's shape, {"error_code":"...","message":"..."}, not httpx's,
// because MLflow clients parse that: 400 INVALID_PARAMETER_VALUE for a bad path, 404
// RESOURCE_DOES_NOT_EXIST, 413 INVALID_PARAMETER_VALUE for an artifact over
// Limits.MaxObjectBytes, 503 TEMPORARILY_UNAVAILABLE for an artifact that kept being
// replaced while it was read, 500 INTERNAL_ERROR for a corrupt artifact (logged, and
// answered before any artifact byte is sent) or any other failure.
//
// Body size: httpx.Server wraps every request body in http.MaxBytesReader with the server's
// MaxBodyBytes (FLYWHEEL_REGISTRY_MAX_BODY_BYTES, 8 MiB by default) before the handler runs,
// and has no per-route override. An upload above that limit is refused with 413 naming it,
// whatever MaxObjectBytes says. To accept artifacts up to MaxObjectBytes the PUT route needs
// a body limit of at least MaxObjectBytes — either a per-route limit in httpx (preferable:
// JSON routes buffer whole bodies through httpx.ReadBody) or, until then, a server-wide
// MaxBodyBytes that large. Put enforces MaxObjectBytes itself while streaming, so the
// artifact route is bounded either way.
func Routes(s *Store, log *zap.Logger) []Route {
	a := &api{store: s, log: log.Named("artifacts")}
	return []Route{
		{Pattern: "PUT " + APIPath + "/{path...}", Scope: httpx.ScopeWrite, Handler: a.put},
		{Pattern: "GET " + APIPath + "/{path...}", Scope: httpx.ScopeRead, Handler: a.get},
		{Pattern: "GET " + APIPath, Scope: httpx.ScopeRead, Handler: a.list},
		{Pattern: "DELETE " + APIPath + "/{path...}", Scope: httpx.ScopeWrite, Handler: a.delete},
	}
}

// Register mounts Routes on srv (read the body size note on Routes).
func Register(srv *httpx.Server, s *Store, log *zap.Logger) {
	for _, rt := range Routes(s, log) {
		srv.Handle(rt.Pattern, rt.Scope, rt.Handler)
	}
}

type api struct {
	store *Store
	log   *zap.Logger
}

func (a *api) put(w http.ResponseWriter, r *http.Request) error {
	path, err := CleanPath(r.PathValue("path"))
	if err != nil {
		return a.fail(w, r, err)
	}
	if limit := a.store.limits.MaxObjectBytes; r.ContentLength > limit {
		return a.fail(w, r, fmt.Errorf("artifact %s is %w: %d bytes, the limit is %d bytes", path, ErrTooLarge, r.ContentLength, limit))
	}
	if _, err := a.store.Put(r.Context(), path, r.Body); err != nil {
		return a.fail(w, r, err)
	}
	httpx.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (a *api) get(w http.ResponseWriter, r *http.Request) error {
	if r.PathValue("path") == "" { // ".../artifacts/?path=dir" lists like ".../artifacts?path=dir"
		return a.list(w, r)
	}
	// Open verifies the whole artifact before it returns, so a corrupt one is answered with
	// a JSON error and no artifact byte goes out.
	rc, info, err := a.store.Open(r.Context(), r.PathValue("path"))
	if err != nil {
		return a.fail(w, r, err)
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(info.FileSize, 10))
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": pathpkg.Base(info.Path)}))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, rc); err != nil {
		// The status is out; the client sees a body shorter than Content-Length.
		a.log.Warn("send artifact", zap.String("path", info.Path), zap.Error(err))
	}
	return nil
}

type listResponse struct {
	Files []FileInfo `json:"files,omitempty"`
}

func (a *api) list(w http.ResponseWriter, r *http.Request) error {
	files, err := a.store.List(r.Context(), r.URL.Query().Get("path"))
	if err != nil {
		return a.fail(w, r, err)
	}
	httpx.WriteJSON(w, http.StatusOK, listResponse{Files: files})
	return nil
}

func (a *api) delete(w http.ResponseWriter, r *http.Request) error {
	// Deleting nothing succeeds, as MLflow's artifact repositories do.
	if err := a.store.Delete(r.Context(), r.PathValue("path")); err != nil && !errors.Is(err, ErrNotFound) {
		return a.fail(w, r, err)
	}
	httpx.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

// mlflowError is MLflow's error body.
type mlflowError struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// fail answers err in MLflow's shape; this is the one place store errors become statuses.
// It returns nil: the response is written.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) error {
	status, code, msg := http.StatusInternalServerError, "INTERNAL_ERROR", "internal error"
	var bodyLimit *http.MaxBytesError
	switch {
	case errors.Is(err, ErrInvalidPath):
		status, code, msg = http.StatusBadRequest, "INVALID_PARAMETER_VALUE", err.Error()
	case errors.Is(err, ErrNotFound):
		status, code, msg = http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", err.Error()
	case errors.Is(err, ErrTooLarge):
		status, code, msg = http.StatusRequestEntityTooLarge, "INVALID_PARAMETER_VALUE", err.Error()
	case errors.As(err, &bodyLimit):
		status, code = http.StatusRequestEntityTooLarge, "INVALID_PARAMETER_VALUE"
		msg = fmt.Sprintf("the request body is larger than the server's limit of %d bytes", bodyLimit.Limit)
	case errors.Is(err, ErrCorrupt):
		msg = err.Error()
		a.log.Error("corrupt artifact", zap.String("route", r.Pattern), zap.String("url_path", r.URL.Path), zap.Error(err))
	case errors.Is(err, ErrReplaced):
		status, code, msg = http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE", err.Error()+"; try again"
	case errors.Is(err, context.Canceled):
		msg = "request cancelled"
		a.log.Info("artifact request cancelled", zap.String("route", r.Pattern), zap.Error(err))
	default:
		a.log.Error("artifact request failed", zap.String("route", r.Pattern), zap.Error(err))
	}
	httpx.WriteJSON(w, status, mlflowError{ErrorCode: code, Message: msg})
	return nil
}
