// Package httpapi is the trainer's HTTP API: request a retrain, follow a run.
package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
	"github.com/flywheel-ml/flywheel/services/trainer/pipeline"
	"github.com/flywheel-ml/flywheel/services/trainer/runs"
)

// Requester asks for runs (triggers.Intake).
type Requester interface {
	Request(model string, t runs.Trigger) (runs.Decision, error)
}

// Checker validates versions and reproduces runs (pipeline.Pipeline).
type Checker interface {
	Validate(ctx context.Context, model string, candidate int) (pipeline.Validation, error)
	Reproduce(ctx context.Context, registryRunID string) (pipeline.Reproduction, error)
}

// API serves the trainer's routes.
type API struct {
	intake  Requester
	book    *runs.Book
	checker Checker
}

// New returns the API.
func New(intake Requester, book *runs.Book, checker Checker) *API {
	return &API{intake: intake, book: book, checker: checker}
}

// Register adds the routes to srv.
func (a *API) Register(srv *httpx.Server) {
	srv.Handle("POST /v1/train", httpx.ScopeWrite, a.train)
	srv.Handle("GET /v1/train/runs/{id}", httpx.ScopeRead, a.run)
	srv.Handle("POST /v1/models/{name}/validate", httpx.ScopeRead, a.validate)
	srv.Handle("POST /v1/runs/{id}/reproduce", httpx.ScopeWrite, a.reproduce)
}

type validateRequest struct {
	Candidate int `json:"candidate"`
}

// validate answers 200 with the gates' verdict whether or not they pass: the verdict is the
// answer; `passed` says which.
func (a *API) validate(w http.ResponseWriter, r *http.Request) error {
	var req validateRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Candidate < 1 {
		return httpx.BadRequest("missing_candidate", `name the version to validate: {"candidate": 3}`)
	}
	v, err := a.checker.Validate(r.Context(), r.PathValue("name"), req.Candidate)
	if err != nil {
		return clientError(err)
	}
	httpx.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (a *API) reproduce(w http.ResponseWriter, r *http.Request) error {
	rep, err := a.checker.Reproduce(r.Context(), r.PathValue("id"))
	if err != nil {
		return clientError(err)
	}
	httpx.WriteJSON(w, http.StatusOK, rep)
	return nil
}

// clientError maps what a caller can fix to 4xx: an unknown model, version or run, or a
// dataset that cannot be evaluated.
func clientError(err error) error {
	switch {
	case errors.Is(err, runs.ErrUnknownModel):
		return &httpx.Error{Status: http.StatusNotFound, Code: "unknown_model", Message: err.Error()}
	case client.IsNotFound(err):
		return &httpx.Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	case errors.Is(err, dataset.ErrUnfit):
		return &httpx.Error{Status: http.StatusUnprocessableEntity, Code: "dataset_unfit", Message: err.Error()}
	}
	return err
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
