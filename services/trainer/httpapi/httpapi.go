// Package httpapi is the trainer's HTTP API: request a retrain, follow a run.
package httpapi

import (
	"errors"
	"net/http"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/trainer/runs"
)

// Requester asks for runs (triggers.Intake).
type Requester interface {
	Request(model string, t runs.Trigger) (runs.Decision, error)
}

// API serves the trainer's routes.
type API struct {
	intake Requester
	book   *runs.Book
}

// New returns the API.
func New(intake Requester, book *runs.Book) *API { return &API{intake: intake, book: book} }

// Register adds the routes to srv.
func (a *API) Register(srv *httpx.Server) {
	srv.Handle("POST /v1/train", httpx.ScopeWrite, a.train)
	srv.Handle("GET /v1/train/runs/{id}", httpx.ScopeRead, a.run)
}

type trainRequest struct {
	Model  string `json:"model"`
	Reason string `json:"reason"`
}

// train answers 202 with the run that will train the model: a new one ("started"), or the
// one in progress that the request joined ("joined").
func (a *API) train(w http.ResponseWriter, r *http.Request) error {
	var req trainRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Model == "" {
		return httpx.BadRequest("missing_model", `name the model to train: {"model": "fraud"}`)
	}
	d, err := a.intake.Request(req.Model, runs.Trigger{Kind: runs.Manual, Reason: req.Reason})
	if errors.Is(err, runs.ErrUnknownModel) {
		return httpx.NotFound("unknown_model", "no training spec for model "+req.Model+" (schemas/models/"+req.Model+".yaml)")
	}
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"run": d.Run, "outcome": d.Outcome})
	return nil
}

func (a *API) run(w http.ResponseWriter, r *http.Request) error {
	run, ok := a.book.Get(r.PathValue("id"))
	if !ok {
		return httpx.NotFound("unknown_run", "no training run "+r.PathValue("id")+" (runs are kept in memory while the trainer runs)")
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"run": run})
	return nil
}
