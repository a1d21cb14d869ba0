// Package httpapi is serving's own HTTP surface: POST /v1/models/{name}:predict, the list of
// served models and versions, and the traffic split of a model.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/serving/model"
	"github.com/flywheel-ml/flywheel/services/serving/predict"
	"github.com/flywheel-ml/flywheel/services/serving/routing"
	"github.com/flywheel-ml/flywheel/services/serving/shed"
)

// PinHeader pins the version that answers: "champion", "challenger" or a version number.
const PinHeader = "X-Flywheel-Model-Version"

// RequestIDHeader carries the caller's request id (one is made up when absent).
const RequestIDHeader = "X-Request-Id"

// API holds the handlers.
type API struct {
	predict *predict.Service
	limiter *shed.Limiter
	timeout time.Duration
}

// New returns the API; every prediction gets at most timeout.
func New(p *predict.Service, limiter *shed.Limiter, timeout time.Duration) *API {
	return &API{predict: p, limiter: limiter, timeout: timeout}
}

// Register adds the routes.
func (a *API) Register(srv *httpx.Server) {
	srv.Handle("POST /v1/models/{call}", httpx.ScopeRead, a.limiter.Wrap(a.predictCall))
	srv.Handle("GET /v1/models", httpx.ScopeRead, a.list)
	srv.Handle("GET /v1/models/{name}", httpx.ScopeRead, a.get)
	srv.Handle("PUT /v1/models/{name}/traffic", httpx.ScopeAdmin, a.setTraffic)
}

type predictBody struct {
	ID        string            `json:"id"`
	Instances []json.RawMessage `json:"instances"`
}

type predictionJSON struct {
	Version int       `json:"version"`
	Alias   string    `json:"alias"`
	Score   float64   `json:"score"`
	Label   *int      `json:"label,omitempty"`
	Scores  []float64 `json:"scores,omitempty"`
}

type predictAnswer struct {
	Model       string           `json:"model"`
	Version     int              `json:"version,omitempty"` // when every instance was answered by one version
	RequestID   string           `json:"request_id"`
	Predictions []predictionJSON `json:"predictions"`
}

func (a *API) predictCall(w http.ResponseWriter, r *http.Request) error {
	name, ok := strings.CutSuffix(r.PathValue("call"), ":predict")
	if !ok || name == "" {
		return httpx.NotFound("not_found", "POST /v1/models/{name}:predict is the prediction call")
	}
	var body predictBody
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return err
	}
	req := &predict.Request{Model: name, RequestID: RequestID(r, body.ID), Pin: r.Header.Get(PinHeader),
		Instances: make([]model.Instance, len(body.Instances))}
	for i, raw := range body.Instances {
		in, err := DecodeInstance(raw)
		if err != nil {
			return httpx.BadRequest("bad_instance", fmt.Sprintf("instances[%d]: %v", i, err))
		}
		req.Instances[i] = in
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()
	res, err := a.predict.Predict(ctx, req)
	if err != nil {
		return ErrorFor(w, err, a.timeout)
	}
	out := predictAnswer{Model: res.Model, RequestID: res.RequestID, Predictions: make([]predictionJSON, len(res.Predictions))}
	for i, p := range res.Predictions {
		out.Predictions[i] = predictionJSON{Version: p.Version, Alias: p.Alias, Score: p.Output.Score, Label: p.Output.Label, Scores: p.Output.Scores}
		if i == 0 || out.Version == p.Version {
			out.Version = p.Version
		} else {
			out.Version = -1
		}
	}
	if out.Version < 0 {
		out.Version = 0
	}
	w.Header().Set(RequestIDHeader, res.RequestID)
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// DecodeInstance reads one instance: an object of entity keys and request-time fields, with
// an optional "features" object of values the caller supplies itself.
func DecodeInstance(raw json.RawMessage) (model.Instance, error) {
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return model.Instance{}, errors.New("an instance is a JSON object of entity keys and request fields")
	}
	in := model.Instance{Fields: fields}
	if sup, ok := fields["features"]; ok {
		m, isObj := sup.(map[string]any)
		if !isObj {
			return model.Instance{}, errors.New(`"features" must be an object of feature values`)
		}
		in.Supplied = m
		delete(fields, "features")
	}
	return in, nil
}

// RequestID is the caller's request id (header, then body), or a new random one.
func RequestID(r *http.Request, fromBody string) string {
	if id := r.Header.Get(RequestIDHeader); id != "" && len(id) <= 128 {
		return id
	}
	if fromBody != "" && len(fromBody) <= 128 {
		return fromBody
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrorFor maps a prediction error to its answer.
func ErrorFor(w http.ResponseWriter, err error, timeout time.Duration) error {
	var bad *predict.BadInput
	switch {
	case errors.As(err, &bad):
		return httpx.BadRequest("bad_instance", bad.Msg)
	case errors.Is(err, predict.ErrUnknownModel):
		return httpx.NotFound("model_not_found", err.Error())
	case errors.Is(err, routing.ErrNoSuchVersion):
		return httpx.NotFound("version_not_served", err.Error())
	case errors.Is(err, predict.ErrNotReady):
		w.Header().Set("Retry-After", "1")
		return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "model_not_loaded", Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "deadline_exceeded",
			Message: fmt.Sprintf("no answer within the request deadline of %v: %v", timeout, err)}
	case errors.Is(err, predict.ErrStoreDown):
		w.Header().Set("Retry-After", "1")
		return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "feature_store_unavailable", Message: err.Error()}
	}
	return err
}

type versionJSON struct {
	Version  int       `json:"version"`
	Alias    string    `json:"alias"`
	SHA256   string    `json:"sha256"`
	Task     string    `json:"task"`
	Algo     string    `json:"algorithm"`
	Inputs   []string  `json:"inputs"`
	LoadedAt time.Time `json:"loaded_at"`
	WarmUpMS float64   `json:"warm_up_ms"`
}

type modelJSON struct {
	Name     string         `json:"name"`
	Ready    bool           `json:"ready"`
	Policy   routing.Policy `json:"traffic"`
	JoinKeys []string       `json:"entity_keys,omitempty"`
	Versions []versionJSON  `json:"versions"`
}

func describe(r *routing.Route) modelJSON {
	m := modelJSON{Name: r.Model, Ready: r.Ready(), Policy: r.Policy, JoinKeys: r.JoinKeys, Versions: []versionJSON{}}
	for _, s := range r.Versions() {
		alias := routing.Champion
		if s != r.Champion {
			alias = routing.Challenger
		}
		v := versionJSON{Version: s.Version, Alias: alias, SHA256: s.Digest, Task: s.Artifact.Task, Algo: s.Artifact.Algorithm,
			LoadedAt: s.LoadedAt, WarmUpMS: float64(s.WarmUp.Microseconds()) / 1000}
		for _, c := range s.Plan.Columns {
			v.Inputs = append(v.Inputs, c.Name)
		}
		m.Versions = append(m.Versions, v)
	}
	return m
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	routes := a.predict.Routes()
	out := struct {
		Models []modelJSON `json:"models"`
	}{Models: []modelJSON{}}
	for _, name := range routes.Models() {
		if rt := routes.Get(name); rt != nil {
			out.Models = append(out.Models, describe(rt))
		}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	rt := a.predict.Routes().Get(r.PathValue("name"))
	if rt == nil {
		return httpx.NotFound("model_not_found", fmt.Sprintf("model %q is not served", r.PathValue("name")))
	}
	httpx.WriteJSON(w, http.StatusOK, describe(rt))
	return nil
}

func (a *API) setTraffic(w http.ResponseWriter, r *http.Request) error {
	var p routing.Policy
	if err := httpx.DecodeJSON(r, &p); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := a.predict.Routes().SetPolicy(name, p); err != nil {
		return httpx.BadRequest("bad_traffic", err.Error())
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"model": name, "traffic": p})
	return nil
}
