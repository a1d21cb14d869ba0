package client

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// EnsureExperiment returns the id of the named experiment, creating it when missing.
func (c *Client) EnsureExperiment(ctx context.Context, name string) (string, error) {
	var got struct {
		Experiment struct {
			ID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	err := c.getJSON(ctx, mlflow+"experiments/get-by-name", url.Values{"experiment_name": {name}}, &got)
	if err == nil {
		return got.Experiment.ID, nil
	}
	if !IsNotFound(err) {
		return "", err
	}
	var created struct {
		ID string `json:"experiment_id"`
	}
	err = c.postJSON(ctx, mlflow+"experiments/create", map[string]string{"name": name}, &created)
	if IsAlreadyExists(err) { // created concurrently
		return c.EnsureExperiment(ctx, name)
	}
	return created.ID, err
}

// RunInfo is what the trainer needs of a run.
type RunInfo struct {
	ID           string `json:"run_id"`
	ExperimentID string `json:"experiment_id"`
	ArtifactURI  string `json:"artifact_uri"`
	Status       string `json:"status"`
}

// CreateRun starts a run in the experiment with tags.
func (c *Client) CreateRun(ctx context.Context, experimentID, name string, tags map[string]string) (RunInfo, error) {
	req := map[string]any{"experiment_id": experimentID, "run_name": name, "start_time": time.Now().UnixMilli()}
	var ts []map[string]string
	for k, v := range tags {
		ts = append(ts, map[string]string{"key": k, "value": v})
	}
	req["tags"] = ts
	var got struct {
		Run struct {
			Info RunInfo `json:"info"`
		} `json:"run"`
	}
	if err := c.postJSON(ctx, mlflow+"runs/create", req, &got); err != nil {
		return RunInfo{}, err
	}
	return got.Run.Info, nil
}

// Metric is one metric point.
type Metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

// LogBatch records metrics, params and tags of a run, in batches within MLflow's limits.
func (c *Client) LogBatch(ctx context.Context, runID string, metrics []Metric, params, tags map[string]string) error {
	kv := func(m map[string]string) []map[string]string {
		out := make([]map[string]string, 0, len(m))
		for k, v := range m {
			out = append(out, map[string]string{"key": k, "value": v})
		}
		return out
	}
	p, t := kv(params), kv(tags)
	for len(metrics) > 0 || len(p) > 0 || len(t) > 0 {
		nm, np, nt := min(len(metrics), 900), min(len(p), 50), min(len(t), 50)
		req := map[string]any{"run_id": runID, "metrics": metrics[:nm], "params": p[:np], "tags": t[:nt]}
		if err := c.postJSON(ctx, mlflow+"runs/log-batch", req, nil); err != nil {
			return fmt.Errorf("log batch to run %s: %w", runID, err)
		}
		metrics, p, t = metrics[nm:], p[np:], t[nt:]
	}
	return nil
}

// EndRun marks the run FINISHED or FAILED.
func (c *Client) EndRun(ctx context.Context, runID, status string) error {
	return c.postJSON(ctx, mlflow+"runs/update", map[string]any{"run_id": runID, "status": status,
		"end_time": strconv.FormatInt(time.Now().UnixMilli(), 10)}, nil)
}

// GetRun reads a run's info.
func (c *Client) GetRun(ctx context.Context, runID string) (RunInfo, error) {
	var got struct {
		Run struct {
			Info RunInfo `json:"info"`
		} `json:"run"`
	}
	err := c.getJSON(ctx, mlflow+"runs/get", url.Values{"run_id": {runID}}, &got)
	return got.Run.Info, err
}

// Run is a run as runs/search answers it: its info and tags.
type Run struct {
	Info struct {
		ID           string `json:"run_id"`
		ExperimentID string `json:"experiment_id"`
		RunName      string `json:"run_name"`
		Status       string `json:"status"`
		StartTime    int64  `json:"start_time"`         // Unix milliseconds
		EndTime      int64  `json:"end_time,omitempty"` // Unix milliseconds; 0 while the run runs
	} `json:"info"`
	Data struct {
		Tags []RunTag `json:"tags"`
	} `json:"data"`
}

// RunTag is one tag of a run.
type RunTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Tag returns the run's tag (empty when absent).
func (r Run) Tag(key string) string {
	for _, t := range r.Data.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// searchPage is the most runs asked for per runs/search call.
var searchPage = 1000

// SearchRuns returns up to max active runs of the experiments matching an MLflow filter
// (the registry README's search filters; empty matches all), newest first by start time,
// reading as many pages as it takes.
func (c *Client) SearchRuns(ctx context.Context, experimentIDs []string, filter string, max int) ([]Run, error) {
	var out []Run
	token := ""
	for len(out) < max {
		var got struct {
			Runs      []Run  `json:"runs"`
			NextToken string `json:"next_page_token"`
		}
		req := map[string]any{"experiment_ids": experimentIDs, "filter": filter, "max_results": min(max-len(out), searchPage),
			"order_by": []string{"attributes.start_time DESC"}}
		if token != "" {
			req["page_token"] = token
		}
		if err := c.postJSON(ctx, mlflow+"runs/search", req, &got); err != nil {
			return nil, fmt.Errorf("search runs: %w", err)
		}
		out = append(out, got.Runs...)
		if got.NextToken == "" || len(got.Runs) == 0 {
			break
		}
		token = got.NextToken
	}
	return out, nil
}
