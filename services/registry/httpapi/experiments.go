package httpapi

import (
	"net/http"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/registry/search"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

var (
	get     = []string{http.MethodGet}
	post    = []string{http.MethodPost}
	getPost = []string{http.MethodGet, http.MethodPost}
	patch   = []string{http.MethodPatch}
	del     = []string{http.MethodDelete}
)

func (a *API) registerExperiments() {
	a.mlflow(post, "experiments/create", httpx.ScopeWrite, a.createExperiment)
	a.mlflow(get, "experiments/get", httpx.ScopeRead, a.getExperiment)
	a.mlflow(get, "experiments/get-by-name", httpx.ScopeRead, a.getExperimentByName)
	a.mlflow(getPost, "experiments/search", httpx.ScopeRead, a.searchExperiments)
	a.mlflow(post, "experiments/update", httpx.ScopeWrite, a.updateExperiment)
	a.mlflow(post, "experiments/delete", httpx.ScopeWrite, a.lifecycleExperiment(store.StageDeleted))
	a.mlflow(post, "experiments/restore", httpx.ScopeWrite, a.lifecycleExperiment(store.StageActive))
	a.mlflow(post, "experiments/set-experiment-tag", httpx.ScopeWrite, a.setExperimentTag)
}

func (a *API) createExperiment(r *http.Request, p *params) (any, error) {
	name, err := p.required("name")
	if err != nil {
		return nil, err
	}
	loc, err := p.str("artifact_location")
	if err != nil {
		return nil, err
	}
	var tags []keyValue
	if err := p.decode("tags", &tags); err != nil {
		return nil, err
	}
	e, err := a.store.CreateExperiment(r.Context(), name, loc, tagMap(tags))
	if err != nil {
		return nil, err
	}
	return map[string]string{"experiment_id": e.ID}, nil
}

func (a *API) getExperiment(r *http.Request, p *params) (any, error) {
	id, err := p.required("experiment_id")
	if err != nil {
		return nil, err
	}
	e, err := a.store.GetExperiment(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"experiment": experimentOut(e)}, nil
}

func (a *API) getExperimentByName(r *http.Request, p *params) (any, error) {
	name, err := p.required("experiment_name")
	if err != nil {
		return nil, err
	}
	e, err := a.store.GetExperimentByName(r.Context(), name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"experiment": experimentOut(e)}, nil
}

func (a *API) updateExperiment(r *http.Request, p *params) (any, error) {
	vals, err := p.requiredAll("experiment_id", "new_name")
	if err != nil {
		return nil, err
	}
	id, name := vals[0], vals[1]
	_, err = a.store.RenameExperiment(r.Context(), id, name)
	return nil, err
}

func (a *API) lifecycleExperiment(stage string) mlflowHandler {
	return func(r *http.Request, p *params) (any, error) {
		id, err := p.required("experiment_id")
		if err != nil {
			return nil, err
		}
		_, err = a.store.SetExperimentLifecycle(r.Context(), id, stage)
		return nil, err
	}
}

func (a *API) setExperimentTag(r *http.Request, p *params) (any, error) {
	id, err := p.required("experiment_id")
	if err != nil {
		return nil, err
	}
	key, value, err := p.keyValue()
	if err != nil {
		return nil, err
	}
	_, err = a.store.SetExperimentTag(r.Context(), id, key, value)
	return nil, err
}

// viewType reads MLflow's ViewType (ACTIVE_ONLY by default) as a lifecycle filter.
func viewType(p *params, name string) (string, error) {
	v, err := p.str(name)
	if err != nil {
		return "", err
	}
	switch v {
	case "", "ACTIVE_ONLY", "1":
		return store.StageActive, nil
	case "DELETED_ONLY", "2":
		return store.StageDeleted, nil
	case "ALL", "3":
		return "", nil
	}
	return "", invalid("invalid value '%s' for parameter '%s': use ACTIVE_ONLY, DELETED_ONLY or ALL", v, name)
}

func (a *API) searchExperiments(r *http.Request, p *params) (any, error) {
	req, err := readSearch(p, search.Experiments, 1000, 50000)
	if err != nil {
		return nil, err
	}
	stage, err := viewType(p, "view_type")
	if err != nil {
		return nil, err
	}
	all, err := a.store.Experiments(r.Context())
	if err != nil {
		return nil, err
	}
	var records []experimentRecord
	for _, e := range all {
		if stage == "" || e.LifecycleStage == stage {
			records = append(records, experimentRecord{e})
		}
	}
	items, next := searchPage(req, records)
	out := struct {
		Experiments   []experimentJSON `json:"experiments,omitempty"`
		NextPageToken string           `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	for _, e := range items {
		out.Experiments = append(out.Experiments, experimentOut(e.Experiment))
	}
	return out, nil
}

// parseSearch reads filter and order_by and validates them against the entity's schema; the
// orders come back with the schema's default and tie-break applied.
func parseSearch(p *params, schema *search.Schema) (search.Filter, []search.Order, error) {
	text, err := p.str("filter")
	if err != nil {
		return nil, nil, err
	}
	f, err := search.ParseFilter(text)
	if err != nil {
		return nil, nil, err
	}
	if f, err = schema.Filter(f); err != nil {
		return nil, nil, err
	}
	clauses, err := p.strs("order_by")
	if err != nil {
		return nil, nil, err
	}
	orders, err := search.ParseOrderBy(clauses)
	if err != nil {
		return nil, nil, err
	}
	orders, err = schema.OrderBy(orders)
	return f, orders, err
}

type experimentRecord struct{ store.Experiment }

func (e experimentRecord) Attr(key string) (any, bool) {
	switch key {
	case "name":
		return e.Name, true
	case "experiment_id":
		return e.ID, true
	case "lifecycle_stage":
		return e.LifecycleStage, true
	case "creation_time":
		return e.CreationTime, true
	case "last_update_time":
		return e.LastUpdateTime, true
	}
	return nil, false
}
func (e experimentRecord) Tag(key string) (string, bool) { v, ok := e.Tags[key]; return v, ok }
func (e experimentRecord) Metric(string) (float64, bool) { return 0, false }
func (e experimentRecord) Param(string) (string, bool)   { return "", false }
