// Package httpapi is the monitor's HTTP surface: a model's current drift picture.
package httpapi

import (
	"context"
	"net/http"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/schemas"
)

// Recent reads the newest scores and events of a model.
type Recent interface {
	Recent(ctx context.Context, model string, events int) ([]map[string]any, []schemas.DriftEvent, error)
}

// API holds the handlers.
type API struct{ recent Recent }

// New returns the API.
func New(r Recent) *API { return &API{recent: r} }

// Register adds the routes.
func (a *API) Register(srv *httpx.Server) {
	srv.Handle("GET /v1/models/{name}/drift", httpx.ScopeRead, a.drift)
}

func (a *API) drift(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	scores, events, err := a.recent.Recent(r.Context(), name, 20)
	if err != nil {
		return httpx.Unavailable("drift results unavailable", err)
	}
	if scores == nil {
		scores = []map[string]any{}
	}
	if events == nil {
		events = []schemas.DriftEvent{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"model": name, "latest": scores, "events": events})
	return nil
}
