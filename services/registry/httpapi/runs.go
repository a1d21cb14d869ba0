package httpapi

import (
	"cmp"
	"net/http"
	"time"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/registry/runindex"
	"github.com/flywheel-ml/flywheel/services/registry/search"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

func (a *API) registerRuns() {
	a.mlflow(post, "runs/create", httpx.ScopeWrite, a.createRun)
	a.mlflow(post, "runs/update", httpx.ScopeWrite, a.updateRun)
	a.mlflow(get, "runs/get", httpx.ScopeRead, a.getRun)
	a.mlflow(post, "runs/delete", httpx.ScopeWrite, a.lifecycleRun(store.StageDeleted))
	a.mlflow(post, "runs/restore", httpx.ScopeWrite, a.lifecycleRun(store.StageActive))
	a.mlflow(post, "runs/log-metric", httpx.ScopeWrite, a.logMetric)
	a.mlflow(post, "runs/log-parameter", httpx.ScopeWrite, a.logParam)
	a.mlflow(post, "runs/log-batch", httpx.ScopeWrite, a.logBatch)
	a.mlflow(post, "runs/set-tag", httpx.ScopeWrite, a.setRunTag)
	a.mlflow(post, "runs/delete-tag", httpx.ScopeWrite, a.deleteRunTag)
	a.mlflow(post, "runs/log-inputs", httpx.ScopeWrite, a.logInputs)
	a.mlflow(post, "runs/search", httpx.ScopeRead, a.searchRuns)
	a.mlflow(get, "metrics/get-history", httpx.ScopeRead, a.metricHistory)
}

// runID reads run_id, or the deprecated run_uuid older clients send.
func runID(p *params) (string, error) {
	id, err := p.str("run_id")
	if err != nil || id != "" {
		return id, err
	}
	return p.required("run_uuid")
}

func (a *API) createRun(r *http.Request, p *params) (any, error) {
	exp, err := p.str("experiment_id")
	if err != nil {
		return nil, err
	}
	if exp == "" {
		exp = store.DefaultExperimentID
	}
	user, err := p.str("user_id")
	if err != nil {
		return nil, err
	}
	name, err := p.str("run_name")
	if err != nil {
		return nil, err
	}
	start, _, err := p.int64("start_time")
	if err != nil {
		return nil, err
	}
	var tags []keyValue
	if err := p.decode("tags", &tags); err != nil {
		return nil, err
	}
	run, err := a.store.CreateRun(r.Context(), store.Run{ExperimentID: exp, UserID: user, Name: name, StartTime: start, Tags: tagMap(tags)})
	if err != nil {
		return nil, err
	}
	return map[string]any{"run": runOut(run)}, nil
}

func (a *API) updateRun(r *http.Request, p *params) (any, error) {
	id, err := runID(p)
	if err != nil {
		return nil, err
	}
	var u store.RunUpdate
	if s, err := p.str("status"); err != nil {
		return nil, err
	} else if s != "" {
		u.Status = &s
	}
	if end, ok, err := p.int64("end_time"); err != nil {
		return nil, err
	} else if ok {
		u.EndTime = &end
	}
	if name, err := p.str("run_name"); err != nil {
		return nil, err
	} else if name != "" {
		u.Name = &name
	}
	run, err := a.store.UpdateRun(r.Context(), id, u)
	if err != nil {
		return nil, err
	}
	return map[string]any{"run_info": runInfoOut(run)}, nil
}

func (a *API) getRun(r *http.Request, p *params) (any, error) {
	id, err := runID(p)
	if err != nil {
		return nil, err
	}
	run, err := a.store.GetRun(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"run": runOut(run)}, nil
}

func (a *API) lifecycleRun(stage string) mlflowHandler {
	return func(r *http.Request, p *params) (any, error) {
		id, err := runID(p)
		if err != nil {
			return nil, err
		}
		_, err = a.store.SetRunLifecycle(r.Context(), id, stage)
		return nil, err
	}
}

func (a *API) logMetric(r *http.Request, p *params) (any, error) {
	id, err := runID(p)
	if err != nil {
		return nil, err
	}
	key, err := p.required("key")
	if err != nil {
		return nil, err
	}
	value, ok, err := p.float("value")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalid("missing value for required parameter 'value'")
	}
	ts, ok, err := p.int64("timestamp")
	if err != nil {
		return nil, err
	}
	if !ok {
		ts = time.Now().UnixMilli()
	}
	step, _, err := p.int64("step")
	if err != nil {
		return nil, err
	}
	_, err = a.store.LogBatch(r.Context(), id, []store.Metric{{Key: key, Value: value, Timestamp: ts, Step: step}}, nil, nil)
	return nil, err
}

func (a *API) logParam(r *http.Request, p *params) (any, error) {
	id, err := runID(p)
	if err != nil {
		return nil, err
	}
	key, value, err := p.keyValue()
	if err != nil {
		return nil, err
	}
	_, err = a.store.LogBatch(r.Context(), id, nil, map[string]string{key: value}, nil)
	return nil, err
}

// batchMetric accepts MLflow's metric with int64 fields as numbers or strings.
type batchMetric struct {
	Key       string    `json:"key"`
	Value     jsonFloat `json:"value"`
	Timestamp jsonInt64 `json:"timestamp"`
	Step      jsonInt64 `json:"step"`
}

func (a *API) logBatch(r *http.Request, p *params) (any, error) {
	var req struct {
		RunID   string        `json:"run_id"`
		RunUUID string        `json:"run_uuid"`
		Metrics []batchMetric `json:"metrics"`
		Params  []keyValue    `json:"params"`
		Tags    []keyValue    `json:"tags"`
	}
	if err := p.into(&req); err != nil {
		return nil, err
	}
	id := cmp.Or(req.RunID, req.RunUUID, p.query.Get("run_id"))
	if id == "" {
		return nil, invalid("missing value for required parameter 'run_id'")
	}
	if len(req.Params) > store.MaxBatchParams || len(req.Tags) > store.MaxBatchTags {
		return nil, invalid("a batch holds at most %d params and %d tags; got %d and %d", store.MaxBatchParams, store.MaxBatchTags, len(req.Params), len(req.Tags))
	}
	params := make(map[string]string, len(req.Params))
	for _, kv := range req.Params {
		if old, ok := params[kv.Key]; ok && old != kv.Value {
			return nil, invalid("duplicate parameter keys with different values in the batch: '%s'", kv.Key)
		}
		params[kv.Key] = kv.Value
	}
	points := make([]store.Metric, len(req.Metrics))
	now := time.Now().UnixMilli()
	for i, m := range req.Metrics {
		ts := int64(m.Timestamp)
		if ts == 0 {
			ts = now
		}
		points[i] = store.Metric{Key: m.Key, Value: float64(m.Value), Timestamp: ts, Step: int64(m.Step)}
	}
	_, err := a.store.LogBatch(r.Context(), id, points, params, tagMap(req.Tags))
	return nil, err
}

func (a *API) setRunTag(r *http.Request, p *params) (any, error) {
	id, err := runID(p)
	if err != nil {
		return nil, err
	}
	key, value, err := p.keyValue()
	if err != nil {
		return nil, err
	}
	_, err = a.store.SetRunTag(r.Context(), id, key, value)
	return nil, err
}

func (a *API) deleteRunTag(r *http.Request, p *params) (any, error) {
	id, err := runID(p)
	if err != nil {
		return nil, err
	}
	key, err := p.required("key")
	if err != nil {
		return nil, err
	}
	_, err = a.store.DeleteRunTag(r.Context(), id, key)
	return nil, err
}

func (a *API) logInputs(r *http.Request, p *params) (any, error) {
	id, err := runID(p)
	if err != nil {
		return nil, err
	}
	var datasets []datasetInputJSON
	if err := p.decode("datasets", &datasets); err != nil {
		return nil, err
	}
	inputs := make([]store.DatasetInput, len(datasets))
	for i, d := range datasets {
		inputs[i] = store.DatasetInput{Dataset: d.Dataset, Tags: tagMap(d.Tags)}
	}
	_, err = a.store.LogInputs(r.Context(), id, inputs)
	return nil, err
}

func (a *API) searchRuns(r *http.Request, p *params) (any, error) {
	experiments, err := p.strs("experiment_ids")
	if err != nil {
		return nil, err
	}
	req, err := readSearch(p, search.Runs, 1000, 50000)
	if err != nil {
		return nil, err
	}
	stage, err := viewType(p, "run_view_type")
	if err != nil {
		return nil, err
	}
	limit, offset := req.limit, req.offset
	q := search.RunsQuery{ExperimentIDs: experiments, Filter: req.filter, Orders: req.orders, Lifecycle: stage, Limit: limit + 1, Offset: offset}
	sql, args, err := q.SQL()
	if err != nil {
		return nil, err
	}
	if err := a.runs.WaitForAll(r.Context(), a.wait); err != nil {
		return nil, err
	}
	ids, err := runindex.RunIDs(r.Context(), a.ch, sql, args)
	if err != nil {
		return nil, err
	}
	more := len(ids) > limit
	// The index chose and ordered the runs; their documents come from the KV, current as of
	// now (a run changed since the index matched it is shown as it is now).
	runs, err := a.store.GetRuns(r.Context(), ids[:min(len(ids), limit)])
	if err != nil {
		return nil, err
	}
	out := struct {
		Runs          []runJSON `json:"runs,omitempty"`
		NextPageToken string    `json:"next_page_token,omitempty"`
	}{NextPageToken: nextPageToken(offset, len(runs), limit, more)}
	for _, run := range runs {
		out.Runs = append(out.Runs, runOut(run))
	}
	return out, nil
}

func (a *API) metricHistory(r *http.Request, p *params) (any, error) {
	id, err := runID(p)
	if err != nil {
		return nil, err
	}
	key, err := p.required("metric_key")
	if err != nil {
		return nil, err
	}
	limit, err := p.maxResults(25000, 25000)
	if err != nil {
		return nil, err
	}
	offset, err := readPageToken(p)
	if err != nil {
		return nil, err
	}
	if _, err := a.store.GetRun(r.Context(), id); err != nil {
		return nil, err
	}
	if err := a.metrics.WaitForAll(r.Context(), a.wait); err != nil {
		return nil, err
	}
	points, err := runindex.History(r.Context(), a.ch, id, key, offset, limit+1)
	if err != nil {
		return nil, err
	}
	more := len(points) > limit
	points = points[:min(len(points), limit)]
	out := struct {
		Metrics       []metricJSON `json:"metrics"`
		NextPageToken string       `json:"next_page_token,omitempty"`
	}{Metrics: make([]metricJSON, len(points)), NextPageToken: nextPageToken(offset, len(points), limit, more)}
	for i, m := range points {
		out.Metrics[i] = metricJSON(m)
	}
	return out, nil
}
