package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

// Flywheel's extensions, with the platform's error shape {"error":{"code","message"}}.
func (a *API) registerV1() {
	a.srv.Handle("POST /v1/datasets", httpx.ScopeWrite, a.v1(a.createDataset))
	a.srv.Handle("GET /v1/datasets/{id}", httpx.ScopeRead, a.v1(a.getDataset))
	a.srv.Handle("POST /v1/models/{name}/versions", httpx.ScopeWrite, a.v1(a.createVersionV1))
	a.srv.Handle("GET /v1/models/{name}/versions/{version}", httpx.ScopeRead, a.v1(a.getVersionV1))
	a.srv.Handle("GET /v1/models/{name}/aliases", httpx.ScopeRead, a.v1(a.aliasesV1))
	a.srv.Handle("GET /v1/models/{name}/aliases/history", httpx.ScopeRead, a.v1(a.aliasHistory))
	a.srv.Handle("POST /v1/models/{name}/aliases/{alias}", httpx.ScopeWrite, a.v1(a.moveAlias))
	a.srv.Handle("POST /v1/models/{name}/aliases/{alias}/rollback", httpx.ScopeWrite, a.v1(a.rollbackAlias))
}

func (a *API) v1(h func(r *http.Request) (any, error)) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		out, err := h(r)
		if err != nil {
			return v1Error(err)
		}
		httpx.WriteJSON(w, http.StatusOK, out)
		return nil
	}
}

func v1Error(err error) error {
	var he *httpx.Error
	switch {
	case errors.As(err, &he):
		return he
	case errors.Is(err, store.ErrNotFound):
		return httpx.NotFound("not_found", trimSentinel(err, store.ErrNotFound))
	case errors.Is(err, store.ErrAlreadyExists):
		return httpx.Conflict("already_exists", trimSentinel(err, store.ErrAlreadyExists))
	case errors.Is(err, store.ErrInvalid):
		return httpx.BadRequest("invalid", err.Error())
	}
	var me *mlflowError
	if errors.As(err, &me) {
		return &httpx.Error{Status: me.Status, Code: strings.ToLower(me.Code), Message: me.Message}
	}
	return err
}

// decodeBody decodes a JSON body; an empty body leaves dst as it is (every field optional).
func decodeBody(r *http.Request, dst any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return httpx.DecodeJSON(r, dst)
}

func (a *API) createDataset(r *http.Request) (any, error) {
	var d store.DatasetVersion
	if err := decodeBody(r, &d); err != nil {
		return nil, err
	}
	d, err := a.store.CreateDataset(r.Context(), d)
	return map[string]any{"dataset": d}, err
}

func (a *API) getDataset(r *http.Request) (any, error) {
	d, err := a.store.GetDataset(r.Context(), r.PathValue("id"))
	return map[string]any{"dataset": d}, err
}

// versionRequest is a model version with Flywheel's lineage, signature and reference profile.
type versionRequest struct {
	Source      string            `json:"source"`
	RunID       string            `json:"run_id"`
	Description string            `json:"description"`
	Tags        map[string]string `json:"tags"`
	Lineage     *store.Lineage    `json:"lineage"`
	Signature   []store.Field     `json:"signature"`
	Profile     json.RawMessage   `json:"profile"`
}

// Lineage is mirrored into MLflow tags so MLflow clients and UIs see it too.
const (
	tagDatasetVersion = "flywheel.dataset_version"
	tagFeatureViews   = "flywheel.feature_views"
	tagCodeVersion    = "flywheel.code_version"
	tagTrigger        = "flywheel.trigger"
)

func (a *API) createVersionV1(r *http.Request) (any, error) {
	var req versionRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	ctx := r.Context()
	v := store.Version{Name: r.PathValue("name"), Source: req.Source, RunID: req.RunID, Description: req.Description,
		Tags: req.Tags, Lineage: req.Lineage, Signature: req.Signature, Profile: req.Profile}
	if v.Lineage == nil {
		v.Lineage = &store.Lineage{}
	}
	if v.RunID == "" {
		v.RunID = v.Lineage.RunID
	}
	v.Lineage.RunID = v.RunID
	if v.RunID != "" {
		if _, err := a.store.GetRun(ctx, v.RunID); err != nil {
			return nil, err
		}
	}
	if id := v.Lineage.DatasetVersion; id != "" {
		if _, err := a.store.GetDataset(ctx, id); err != nil {
			return nil, err
		}
	}
	if v.Tags == nil {
		v.Tags = map[string]string{}
	}
	for tag, value := range map[string]string{tagDatasetVersion: v.Lineage.DatasetVersion, tagCodeVersion: v.Lineage.CodeVersion,
		tagTrigger: v.Lineage.Trigger, tagFeatureViews: featureViewsTag(v.Lineage.FeatureViews)} {
		if value != "" {
			v.Tags[tag] = value
		}
	}
	created, err := a.store.CreateVersion(ctx, v)
	return map[string]any{"version": created}, err
}

func featureViewsTag(views map[string]string) string {
	parts := make([]string, 0, len(views))
	for view, version := range views {
		parts = append(parts, view+"@"+version)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

type versionWithAliases struct {
	store.Version
	Aliases []string `json:"aliases,omitempty"`
}

func (a *API) getVersionV1(r *http.Request) (any, error) {
	version, err := parseVersion(r.PathValue("version"))
	if err != nil {
		return nil, err
	}
	v, err := a.store.GetVersion(r.Context(), r.PathValue("name"), version)
	if err != nil {
		return nil, err
	}
	aliases, err := a.store.Aliases(r.Context(), v.Name)
	return map[string]any{"version": versionWithAliases{v, aliasesOf(aliases, v.Version)}}, err
}

func (a *API) aliasesV1(r *http.Request) (any, error) {
	aliases, err := a.store.Aliases(r.Context(), r.PathValue("name"))
	return map[string]any{"aliases": aliases}, err
}

func (a *API) aliasHistory(r *http.Request) (any, error) {
	moves, err := a.store.AliasHistory(r.Context(), r.PathValue("name"))
	if moves == nil {
		moves = []store.AliasMove{}
	}
	return map[string]any{"moves": moves}, err
}

type moveRequest struct {
	Version int    `json:"version"`
	Reason  string `json:"reason"`
}

func (a *API) moveAlias(r *http.Request) (any, error) {
	var req moveRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	alias := r.PathValue("alias")
	if err := a.checkAliasScope(r, alias); err != nil {
		return nil, err
	}
	mv, err := a.store.SetAlias(r.Context(), r.PathValue("name"), alias, req.Version, actor(r), req.Reason)
	return map[string]any{"move": mv}, err
}

func (a *API) rollbackAlias(r *http.Request) (any, error) {
	var req moveRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	alias := r.PathValue("alias")
	if err := a.checkAliasScope(r, alias); err != nil {
		return nil, err
	}
	mv, err := a.store.Rollback(r.Context(), r.PathValue("name"), alias, actor(r), req.Reason)
	return map[string]any{"move": mv}, err
}
