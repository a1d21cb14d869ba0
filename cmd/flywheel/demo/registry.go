package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const mlflowAPI = "/api/2.0/mlflow/"

func (c Config) get(ctx context.Context, service, path string, query url.Values, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Services[service]+path+"?"+query.Encode(), nil)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

// demoExperiment returns the id of the demo's experiment, creating it the first time.
func (c Config) demoExperiment(ctx context.Context) (string, error) {
	var got struct {
		Experiment struct {
			ExperimentID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	if err := c.get(ctx, "registry", mlflowAPI+"experiments/get-by-name", url.Values{"experiment_name": {"fraud-demo"}}, &got); err == nil {
		return got.Experiment.ExperimentID, nil
	}
	out, err := c.post(ctx, "registry", mlflowAPI+"experiments/create", map[string]any{"name": "fraud-demo",
		"tags": []map[string]string{{"key": "team", "value": "risk"}}})
	if err != nil {
		return "", err
	}
	var created struct {
		ExperimentID string `json:"experiment_id"`
	}
	return created.ExperimentID, json.Unmarshal(out, &created)
}

// experimentRuns logs three training runs with the mlflow client's calls, then searches them.
func experimentRuns(ctx context.Context, cfg Config, out io.Writer) error {
	exp, err := cfg.demoExperiment(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  experiment fraud-demo (id %s); three runs, each logging auc and loss over 5 epochs with log-batch:\n", exp)
	for i, lr := range []string{"0.05", "0.1", "0.3"} {
		body, err := cfg.post(ctx, "registry", mlflowAPI+"runs/create", map[string]any{"experiment_id": exp,
			"run_name": fmt.Sprintf("gbt-lr%s-%s", lr, cfg.Run), "start_time": time.Now().UnixMilli(),
			"tags": []map[string]string{{"key": "mlflow.user", "value": "demo"}}})
		if err != nil {
			return err
		}
		var run struct {
			Run struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"run"`
		}
		if err := json.Unmarshal(body, &run); err != nil {
			return err
		}
		id := run.Run.Info.RunID
		for epoch := range 5 {
			auc := 0.78 + 0.03*float64(epoch) - 0.02*float64(i*i) + 0.01*float64(i)
			if _, err := cfg.post(ctx, "registry", mlflowAPI+"runs/log-batch", map[string]any{"run_id": id,
				"metrics": []map[string]any{{"key": "auc", "value": auc, "timestamp": time.Now().UnixMilli(), "step": epoch},
					{"key": "loss", "value": 0.6 / float64(epoch+1), "timestamp": time.Now().UnixMilli(), "step": epoch}},
				"params": []map[string]string{{"key": "learning_rate", "value": lr}, {"key": "max_depth", "value": "6"}}}); err != nil {
				return err
			}
		}
		if _, err := cfg.post(ctx, "registry", mlflowAPI+"runs/update", map[string]any{"run_id": id, "status": "FINISHED", "end_time": time.Now().UnixMilli()}); err != nil {
			return err
		}
	}
	filter := "metrics.auc > 0.85 and params.max_depth = '6'"
	body, err := cfg.post(ctx, "registry", mlflowAPI+"runs/search", map[string]any{"experiment_ids": []string{exp},
		"filter": filter, "order_by": []string{"metrics.auc DESC"}, "max_results": 5})
	if err != nil {
		return err
	}
	var found struct {
		Runs []struct {
			Info struct {
				RunID   string `json:"run_id"`
				RunName string `json:"run_name"`
				Status  string `json:"status"`
			} `json:"info"`
			Data struct {
				Metrics []struct {
					Key   string  `json:"key"`
					Value float64 `json:"value"`
				} `json:"metrics"`
			} `json:"data"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(body, &found); err != nil {
		return err
	}
	fmt.Fprintf(out, "  runs/search %q, best first:\n", filter)
	for _, r := range found.Runs {
		var ms []string
		for _, m := range r.Data.Metrics {
			ms = append(ms, fmt.Sprintf("%s=%.3f", m.Key, m.Value))
		}
		fmt.Fprintf(out, "    %s  %-22s %-8s %s\n", r.Info.RunID[:8], r.Info.RunName, r.Info.Status, strings.Join(ms, " "))
	}
	if len(found.Runs) == 0 {
		return fmt.Errorf("runs/search found no run with %s", filter)
	}
	var history struct {
		Metrics []struct {
			Step  int64   `json:"step"`
			Value float64 `json:"value"`
		} `json:"metrics"`
	}
	best := found.Runs[0].Info.RunID
	if err := cfg.get(ctx, "registry", mlflowAPI+"metrics/get-history", url.Values{"run_id": {best}, "metric_key": {"auc"}}, &history); err != nil {
		return err
	}
	var points []string
	for _, m := range history.Metrics {
		points = append(points, fmt.Sprintf("%d:%.3f", m.Step, m.Value))
	}
	fmt.Fprintf(out, "  metrics/get-history auc of %s (from ClickHouse): %s\n", best[:8], strings.Join(points, " "))
	return nil
}

// bestRun is the demo experiment's run with the highest auc.
func (c Config) bestRun(ctx context.Context) (string, error) {
	exp, err := c.demoExperiment(ctx)
	if err != nil {
		return "", err
	}
	body, err := c.post(ctx, "registry", mlflowAPI+"runs/search", map[string]any{"experiment_ids": []string{exp},
		"filter": "metrics.auc > 0", "order_by": []string{"metrics.auc DESC"}, "max_results": 1})
	if err != nil {
		return "", err
	}
	var found struct {
		Runs []struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(body, &found); err != nil {
		return "", err
	}
	if len(found.Runs) == 0 {
		return "", fmt.Errorf("no run with an auc in experiment %s", exp)
	}
	return found.Runs[0].Info.RunID, nil
}

// modelLineage registers a model version from the best run with its lineage and moves
// champion to it, showing the audit trail.
func modelLineage(ctx context.Context, cfg Config, out io.Writer) error {
	best, err := cfg.bestRun(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte("demo training set " + cfg.Run))
	now := time.Now().UTC()
	body, err := cfg.post(ctx, "registry", "/v1/datasets", map[string]any{"name": "fraud-train", "digest": hex.EncodeToString(sum[:]),
		"source_streams": []string{"transactions", "fraud_labels"}, "start": now.Add(-24 * time.Hour), "end": now,
		"feature_views": map[string]string{"card_activity": "see /v1/feature-views"}, "row_count": 400})
	if err != nil {
		return err
	}
	var ds struct {
		Dataset struct {
			ID string `json:"id"`
		} `json:"dataset"`
	}
	if err := json.Unmarshal(body, &ds); err != nil {
		return err
	}
	if _, err := cfg.post(ctx, "registry", mlflowAPI+"registered-models/create", map[string]any{"name": "fraud", "description": "card fraud classifier"}); err != nil &&
		!strings.Contains(err.Error(), "RESOURCE_ALREADY_EXISTS") {
		return err
	}
	body, err = cfg.post(ctx, "registry", "/v1/models/fraud/versions", map[string]any{"source": "runs:/" + best + "/model", "run_id": best,
		"lineage": map[string]any{"dataset_version": ds.Dataset.ID, "feature_views": map[string]string{"card_activity": "current"},
			"code_version": "demo", "trigger": "manual"},
		"signature": []map[string]string{{"name": "amount", "type": "double"}, {"name": "txn_count_1h", "type": "long"}}})
	if err != nil {
		return err
	}
	var v struct {
		Version struct {
			Version int `json:"version"`
		} `json:"version"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	fmt.Fprintf(out, "  dataset version %s recorded; model fraud version %d registered from run %s with lineage\n", ds.Dataset.ID, v.Version.Version, best[:8])
	body, err = cfg.post(ctx, "registry", "/v1/models/fraud/aliases/champion", map[string]any{"version": v.Version.Version, "reason": "demo: best auc"})
	if err != nil {
		return err
	}
	var moved struct {
		Move struct {
			Version, Previous int
		} `json:"move"`
	}
	if err := json.Unmarshal(body, &moved); err != nil {
		return err
	}
	fmt.Fprintf(out, "  champion moved %d → %d (needs the promote scope)\n", moved.Move.Previous, moved.Move.Version)
	var byAlias struct {
		ModelVersion struct {
			Version string   `json:"version"`
			Aliases []string `json:"aliases"`
			RunID   string   `json:"run_id"`
		} `json:"model_version"`
	}
	if err := cfg.get(ctx, "registry", mlflowAPI+"registered-models/alias", url.Values{"name": {"fraud"}, "alias": {"champion"}}, &byAlias); err != nil {
		return err
	}
	fmt.Fprintf(out, "  registered-models/alias fraud@champion → version %s %v\n", byAlias.ModelVersion.Version, byAlias.ModelVersion.Aliases)
	var history struct {
		Moves []struct {
			Version, Previous int
			Actor, Reason     string
			At                time.Time
		} `json:"moves"`
	}
	if err := cfg.get(ctx, "registry", "/v1/models/fraud/aliases/history", nil, &history); err != nil {
		return err
	}
	fmt.Fprintln(out, "  audit trail of fraud's aliases (latest 3):")
	for _, m := range history.Moves[max(0, len(history.Moves)-3):] {
		fmt.Fprintf(out, "    %s  %d → %d  by %s: %s\n", m.At.Format(time.RFC3339), m.Previous, m.Version, m.Actor, m.Reason)
	}
	return nil
}
