package httpapi

import (
	"context"
	"net/http"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/registry/search"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

func (a *API) registerModels() {
	a.mlflow(post, "registered-models/create", httpx.ScopeWrite, a.createModel)
	a.mlflow(get, "registered-models/get", httpx.ScopeRead, a.getModel)
	a.mlflow(getPost, "registered-models/search", httpx.ScopeRead, a.searchModels)
	a.mlflow(post, "registered-models/rename", httpx.ScopeWrite, a.renameModel)
	a.mlflow(patch, "registered-models/update", httpx.ScopeWrite, a.updateModel)
	a.mlflow(del, "registered-models/delete", httpx.ScopeWrite, a.deleteModel)
	a.mlflow(post, "registered-models/set-tag", httpx.ScopeWrite, a.setModelTag)
	a.mlflow(del, "registered-models/delete-tag", httpx.ScopeWrite, a.deleteModelTag)
	a.mlflow(post, "registered-models/alias", httpx.ScopeWrite, a.setAlias)
	a.mlflow(del, "registered-models/alias", httpx.ScopeWrite, a.deleteAlias)
	a.mlflow(get, "registered-models/alias", httpx.ScopeRead, a.getByAlias)
	a.mlflow(getPost, "registered-models/get-latest-versions", httpx.ScopeRead, a.latestVersions)
}

// modelJSON loads what a registered model's answer shows: aliases and the newest version.
func (a *API) modelJSON(ctx context.Context, m store.Model) (registeredModelJSON, error) {
	aliases, err := a.store.Aliases(ctx, m.Name)
	if err != nil {
		return registeredModelJSON{}, err
	}
	versions, err := a.store.Versions(ctx, m.Name)
	if err != nil {
		return registeredModelJSON{}, err
	}
	var latest *store.Version
	if len(versions) > 0 {
		latest = &versions[0]
	}
	return modelOut(m, latest, aliases), nil
}

func (a *API) createModel(r *http.Request, p *params) (any, error) {
	name, err := p.required("name")
	if err != nil {
		return nil, err
	}
	desc, err := p.str("description")
	if err != nil {
		return nil, err
	}
	var tags []keyValue
	if err := p.decode("tags", &tags); err != nil {
		return nil, err
	}
	m, err := a.store.CreateModel(r.Context(), store.Model{Name: name, Description: desc, Tags: tagMap(tags)})
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": modelOut(m, nil, nil)}, nil
}

func (a *API) getModel(r *http.Request, p *params) (any, error) {
	name, err := p.required("name")
	if err != nil {
		return nil, err
	}
	m, err := a.store.GetModel(r.Context(), name)
	if err != nil {
		return nil, err
	}
	out, err := a.modelJSON(r.Context(), m)
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": out}, nil
}

func (a *API) searchModels(r *http.Request, p *params) (any, error) {
	req, err := readSearch(p, search.RegisteredModels, 100, 1000)
	if err != nil {
		return nil, err
	}
	models, err := a.store.Models(r.Context())
	if err != nil {
		return nil, err
	}
	records := make([]modelRecord, len(models))
	for i, m := range models {
		records[i] = modelRecord{m}
	}
	items, next := searchPage(req, records)
	out := struct {
		RegisteredModels []registeredModelJSON `json:"registered_models,omitempty"`
		NextPageToken    string                `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	for _, m := range items {
		mj, err := a.modelJSON(r.Context(), m.Model)
		if err != nil {
			return nil, err
		}
		out.RegisteredModels = append(out.RegisteredModels, mj)
	}
	return out, nil
}

func (a *API) renameModel(r *http.Request, p *params) (any, error) {
	vals, err := p.requiredAll("name", "new_name")
	if err != nil {
		return nil, err
	}
	name, newName := vals[0], vals[1]
	m, err := a.store.RenameModel(r.Context(), name, newName)
	if err != nil {
		return nil, err
	}
	out, err := a.modelJSON(r.Context(), m)
	return map[string]any{"registered_model": out}, err
}

func (a *API) updateModel(r *http.Request, p *params) (any, error) {
	name, err := p.required("name")
	if err != nil {
		return nil, err
	}
	desc, err := p.str("description")
	if err != nil {
		return nil, err
	}
	m, err := a.store.UpdateModelDescription(r.Context(), name, desc)
	if err != nil {
		return nil, err
	}
	out, err := a.modelJSON(r.Context(), m)
	return map[string]any{"registered_model": out}, err
}

func (a *API) deleteModel(r *http.Request, p *params) (any, error) {
	name, err := p.required("name")
	if err != nil {
		return nil, err
	}
	// Deleting a model also removes its champion.
	if _, err := a.store.GetAlias(r.Context(), name, ChampionAlias); err == nil {
		if err := a.requireScope(r, httpx.ScopePromote); err != nil {
			return nil, err
		}
	}
	return nil, a.store.DeleteModel(r.Context(), name)
}

func (a *API) setModelTag(r *http.Request, p *params) (any, error) {
	name, err := p.required("name")
	if err != nil {
		return nil, err
	}
	key, value, err := p.keyValue()
	if err != nil {
		return nil, err
	}
	_, err = a.store.SetModelTag(r.Context(), name, key, value)
	return nil, err
}

func (a *API) deleteModelTag(r *http.Request, p *params) (any, error) {
	vals, err := p.requiredAll("name", "key")
	if err != nil {
		return nil, err
	}
	name, key := vals[0], vals[1]
	_, err = a.store.DeleteModelTag(r.Context(), name, key)
	return nil, err
}

// aliasScope: moving or deleting champion needs promote, other aliases write.
func (a *API) checkAliasScope(r *http.Request, alias string) error {
	if alias == ChampionAlias {
		return a.requireScope(r, httpx.ScopePromote)
	}
	return nil
}

func (a *API) setAlias(r *http.Request, p *params) (any, error) {
	vals, err := p.requiredAll("name", "alias")
	if err != nil {
		return nil, err
	}
	name, alias := vals[0], vals[1]
	vs, err := p.required("version")
	if err != nil {
		return nil, err
	}
	version, err := parseVersion(vs)
	if err != nil {
		return nil, err
	}
	if err := a.checkAliasScope(r, alias); err != nil {
		return nil, err
	}
	_, err = a.store.SetAlias(r.Context(), name, alias, version, actor(r), r.Header.Get("X-Flywheel-Reason"))
	return nil, err
}

func (a *API) deleteAlias(r *http.Request, p *params) (any, error) {
	vals, err := p.requiredAll("name", "alias")
	if err != nil {
		return nil, err
	}
	name, alias := vals[0], vals[1]
	if err := a.checkAliasScope(r, alias); err != nil {
		return nil, err
	}
	return nil, a.store.DeleteAlias(r.Context(), name, alias, actor(r), r.Header.Get("X-Flywheel-Reason"))
}

func (a *API) getByAlias(r *http.Request, p *params) (any, error) {
	vals, err := p.requiredAll("name", "alias")
	if err != nil {
		return nil, err
	}
	name, alias := vals[0], vals[1]
	mv, err := a.store.GetAlias(r.Context(), name, alias)
	if err != nil {
		return nil, err
	}
	v, err := a.store.GetVersion(r.Context(), name, mv.Version)
	if err != nil {
		return nil, err
	}
	out, err := a.versionJSON(r.Context(), v)
	return map[string]any{"model_version": out}, err
}

func (a *API) latestVersions(r *http.Request, p *params) (any, error) {
	name, err := p.required("name")
	if err != nil {
		return nil, err
	}
	stages, err := p.strs("stages")
	if err != nil {
		return nil, err
	}
	versions, err := a.store.Versions(r.Context(), name)
	if err != nil {
		return nil, err
	}
	out := struct {
		ModelVersions []modelVersionJSON `json:"model_versions,omitempty"`
	}{}
	// Without stages every version is in "None"; asking only for other stages finds none.
	wantNone := len(stages) == 0
	for _, s := range stages {
		wantNone = wantNone || s == "None"
	}
	if wantNone && len(versions) > 0 {
		v, err := a.versionJSON(r.Context(), versions[0])
		if err != nil {
			return nil, err
		}
		out.ModelVersions = append(out.ModelVersions, v)
	}
	return out, nil
}

type modelRecord struct{ store.Model }

func (m modelRecord) Attr(key string) (any, bool) {
	switch key {
	case "name":
		return m.Name, true
	case "creation_timestamp":
		return m.CreationTimestamp, true
	case "last_updated_timestamp":
		return m.LastUpdatedTimestamp, true
	}
	return nil, false
}
func (m modelRecord) Tag(key string) (string, bool) { v, ok := m.Tags[key]; return v, ok }
func (m modelRecord) Metric(string) (float64, bool) { return 0, false }
func (m modelRecord) Param(string) (string, bool)   { return "", false }
