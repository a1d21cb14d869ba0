package httpapi

import (
	"context"
	"net/http"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/registry/search"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

func (a *API) registerVersions() {
	a.mlflow(post, "model-versions/create", httpx.ScopeWrite, a.createVersion)
	a.mlflow(get, "model-versions/get", httpx.ScopeRead, a.getVersion)
	a.mlflow(getPost, "model-versions/search", httpx.ScopeRead, a.searchVersions)
	a.mlflow(patch, "model-versions/update", httpx.ScopeWrite, a.updateVersion)
	a.mlflow(del, "model-versions/delete", httpx.ScopeWrite, a.deleteVersion)
	a.mlflow(post, "model-versions/set-tag", httpx.ScopeWrite, a.setVersionTag)
	a.mlflow(del, "model-versions/delete-tag", httpx.ScopeWrite, a.deleteVersionTag)
	a.mlflow(get, "model-versions/get-download-uri", httpx.ScopeRead, a.downloadURI)
}

func (a *API) versionJSON(ctx context.Context, v store.Version) (modelVersionJSON, error) {
	aliases, err := a.store.Aliases(ctx, v.Name)
	if err != nil {
		return modelVersionJSON{}, err
	}
	return versionOut(v, aliasesOf(aliases, v.Version)), nil
}

// nameVersion reads the name and version parameters every version call takes.
func nameVersion(p *params) (string, int, error) {
	name, err := p.required("name")
	if err != nil {
		return "", 0, err
	}
	vs, err := p.required("version")
	if err != nil {
		return "", 0, err
	}
	v, err := parseVersion(vs)
	return name, v, err
}

func (a *API) createVersion(r *http.Request, p *params) (any, error) {
	name, err := p.required("name")
	if err != nil {
		return nil, err
	}
	v := store.Version{Name: name}
	for field, dst := range map[string]*string{"source": &v.Source, "run_id": &v.RunID, "run_link": &v.RunLink, "description": &v.Description} {
		if *dst, err = p.str(field); err != nil {
			return nil, err
		}
	}
	var tags []keyValue
	if err := p.decode("tags", &tags); err != nil {
		return nil, err
	}
	v.Tags = tagMap(tags)
	if v.RunID != "" {
		if _, err := a.store.GetRun(r.Context(), v.RunID); err != nil {
			return nil, err
		}
		v.Lineage = &store.Lineage{RunID: v.RunID}
	}
	created, err := a.store.CreateVersion(r.Context(), v)
	if err != nil {
		return nil, err
	}
	return map[string]any{"model_version": versionOut(created, nil)}, nil
}

func (a *API) getVersion(r *http.Request, p *params) (any, error) {
	name, version, err := nameVersion(p)
	if err != nil {
		return nil, err
	}
	v, err := a.store.GetVersion(r.Context(), name, version)
	if err != nil {
		return nil, err
	}
	out, err := a.versionJSON(r.Context(), v)
	return map[string]any{"model_version": out}, err
}

func (a *API) searchVersions(r *http.Request, p *params) (any, error) {
	req, err := readSearch(p, search.ModelVersions, 10000, 200000)
	if err != nil {
		return nil, err
	}
	versions, err := a.store.AllVersions(r.Context())
	if err != nil {
		return nil, err
	}
	records := make([]versionRecord, len(versions))
	for i, v := range versions {
		records[i] = versionRecord{v}
	}
	items, next := searchPage(req, records)
	out := struct {
		ModelVersions []modelVersionJSON `json:"model_versions,omitempty"`
		NextPageToken string             `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	aliases := map[string][]store.AliasMove{}
	for _, v := range items {
		as, ok := aliases[v.Name]
		if !ok {
			if as, err = a.store.Aliases(r.Context(), v.Name); err != nil {
				return nil, err
			}
			aliases[v.Name] = as
		}
		out.ModelVersions = append(out.ModelVersions, versionOut(v.Version, aliasesOf(as, v.Version.Version)))
	}
	return out, nil
}

func (a *API) updateVersion(r *http.Request, p *params) (any, error) {
	name, version, err := nameVersion(p)
	if err != nil {
		return nil, err
	}
	desc, err := p.str("description")
	if err != nil {
		return nil, err
	}
	v, err := a.store.UpdateVersionDescription(r.Context(), name, version, desc)
	if err != nil {
		return nil, err
	}
	out, err := a.versionJSON(r.Context(), v)
	return map[string]any{"model_version": out}, err
}

func (a *API) deleteVersion(r *http.Request, p *params) (any, error) {
	name, version, err := nameVersion(p)
	if err != nil {
		return nil, err
	}
	if mv, err := a.store.GetAlias(r.Context(), name, ChampionAlias); err == nil && mv.Version == version {
		if err := a.requireScope(r, httpx.ScopePromote); err != nil {
			return nil, err
		}
	}
	return nil, a.store.DeleteVersion(r.Context(), name, version)
}

func (a *API) setVersionTag(r *http.Request, p *params) (any, error) {
	name, version, err := nameVersion(p)
	if err != nil {
		return nil, err
	}
	key, value, err := p.keyValue()
	if err != nil {
		return nil, err
	}
	_, err = a.store.SetVersionTag(r.Context(), name, version, key, value)
	return nil, err
}

func (a *API) deleteVersionTag(r *http.Request, p *params) (any, error) {
	name, version, err := nameVersion(p)
	if err != nil {
		return nil, err
	}
	key, err := p.required("key")
	if err != nil {
		return nil, err
	}
	_, err = a.store.DeleteVersionTag(r.Context(), name, version, key)
	return nil, err
}

func (a *API) downloadURI(r *http.Request, p *params) (any, error) {
	name, version, err := nameVersion(p)
	if err != nil {
		return nil, err
	}
	v, err := a.store.GetVersion(r.Context(), name, version)
	if err != nil {
		return nil, err
	}
	return map[string]string{"artifact_uri": v.Source}, nil
}

type versionRecord struct{ store.Version }

func (v versionRecord) Attr(key string) (any, bool) {
	switch key {
	case "name":
		return v.Name, true
	case "version_number":
		return int64(v.Version.Version), true
	case "run_id":
		return v.RunID, true
	case "source_path":
		return v.Source, true
	case "creation_timestamp":
		return v.CreationTimestamp, true
	case "last_updated_timestamp":
		return v.LastUpdatedTimestamp, true
	}
	return nil, false
}
func (v versionRecord) Tag(key string) (string, bool) { t, ok := v.Tags[key]; return t, ok }
func (v versionRecord) Metric(string) (float64, bool) { return 0, false }
func (v versionRecord) Param(string) (string, bool)   { return "", false }
