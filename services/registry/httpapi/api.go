// Package httpapi serves the registry: MLflow's REST API 2.0 under /api/2.0/mlflow/ (so the
// mlflow client works unchanged), the mlflow-artifacts proxy, and Flywheel's extensions
// under /v1/ (lineage, dataset versions, audited alias moves and rollback).
package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/registry/runindex"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

// ChampionAlias is the alias serving follows; moving it needs the promote scope.
const ChampionAlias = "champion"

// Server is the subset of httpx.Server the API needs.
type Server interface {
	HandleRaw(pattern string, h httpx.HandlerFunc)
	Handle(pattern, scope string, h httpx.HandlerFunc)
	Authorize(r *http.Request, scope string) *httpx.Error
}

// API holds what the handlers use.
type API struct {
	store   *store.Store
	runs    *runindex.Runs
	metrics *runindex.Metrics
	ch      driver.Conn
	srv     Server
	log     *zap.Logger
	maxBody int64
	// wait bounds how long a read waits for ClickHouse to include this process's writes.
	wait time.Duration
}

// New builds the API.
func New(st *store.Store, runs *runindex.Runs, metrics *runindex.Metrics, ch driver.Conn, log *zap.Logger, maxBody int64) *API {
	return &API{store: st, runs: runs, metrics: metrics, ch: ch, log: log, maxBody: maxBody, wait: 5 * time.Second}
}

// mlflowHandler answers with a response object or an error; nil response means {}.
type mlflowHandler func(r *http.Request, p *params) (any, error)

// Register mounts every route on srv.
func (a *API) Register(srv Server) {
	a.srv = srv
	a.registerExperiments()
	a.registerRuns()
	a.registerModels()
	a.registerVersions()
	a.registerV1()
}

// mlflow registers an MLflow route: MLflow-shaped errors (auth errors too), the body limit,
// the JSON answer.
func (a *API) mlflow(methods []string, path, scope string, h mlflowHandler) {
	handler := func(w http.ResponseWriter, r *http.Request) error {
		if err := a.srv.Authorize(r, scope); err != nil {
			a.writeError(w, r, err)
			return nil
		}
		r.Body = http.MaxBytesReader(w, r.Body, a.maxBody)
		p, err := readParams(r)
		if err != nil {
			a.writeError(w, r, err)
			return nil
		}
		out, err := h(r, p)
		if err != nil {
			a.writeError(w, r, err)
			return nil
		}
		if out == nil {
			out = struct{}{}
		}
		httpx.WriteJSON(w, http.StatusOK, out)
		return nil
	}
	for _, m := range methods {
		a.srv.HandleRaw(m+" /api/2.0/mlflow/"+path, handler)
		// MLflow's server also answers under /ajax-api/ (its UI's prefix).
		a.srv.HandleRaw(m+" /ajax-api/2.0/mlflow/"+path, handler)
	}
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	me, internal := toMLflow(err)
	if internal {
		a.log.Error("request failed", zap.String("route", r.Pattern), zap.Error(err))
	}
	httpx.WriteJSON(w, me.Status, me)
}

// requireScope checks an extra scope inside a handler (moving champion needs promote).
func (a *API) requireScope(r *http.Request, scope string) error {
	if err := a.srv.Authorize(r, scope); err != nil {
		return err
	}
	return nil
}

// actor names who made a change, for audit trails: the X-Flywheel-Actor header, else the
// token's fingerprint, else "anonymous".
func actor(r *http.Request) string {
	if v := r.Header.Get("X-Flywheel-Actor"); v != "" {
		if len(v) > 200 {
			v = v[:200]
		}
		return v
	}
	if id := httpx.TokenID(r); id != "" {
		return id
	}
	return "anonymous"
}

// Page tokens are opaque offsets, as MLflow's are.
type pageToken struct {
	Offset int `json:"offset"`
}

func readPageToken(p *params) (int, error) {
	s, err := p.str("page_token")
	if err != nil || s == "" {
		return 0, err
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	var t pageToken
	if err != nil || json.Unmarshal(b, &t) != nil || t.Offset < 0 {
		return 0, invalid("invalid page token '%s'", s)
	}
	return t.Offset, nil
}

func nextPageToken(offset, returned, limit int, more bool) string {
	if !more || returned < limit {
		return ""
	}
	b, _ := json.Marshal(pageToken{Offset: offset + returned})
	return base64.RawURLEncoding.EncodeToString(b)
}

// page cuts items[offset:offset+limit] and says whether more follow.
func page[T any](items []T, offset, limit int) ([]T, bool) {
	if offset >= len(items) {
		return nil, false
	}
	end := min(offset+limit, len(items))
	return items[offset:end], end < len(items)
}

func parseVersion(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return 0, invalid("invalid model version '%s': it must be a positive integer", s)
	}
	return v, nil
}

// Authorized wraps h with the token check, answering failures in MLflow's error shape (for
// routes mounted outside Register, such as the artifact proxy).
func (a *API) Authorized(scope string, h httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := a.srv.Authorize(r, scope); err != nil {
			a.writeError(w, r, err)
			return nil
		}
		return h(w, r)
	}
}
