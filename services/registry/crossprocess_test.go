package registry_test

import (
	"testing"
)

// Two registry processes on one deployment: a client that wrote through one sees its writes
// in searches and metric histories served by the other, at once.
func TestReadYourWritesAcrossProcesses(t *testing.T) {
	a := start(t)
	b := startWith(t, a.prefix, a.database)
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	a.ok("POST", api+"experiments/create", map[string]any{"name": "two-processes"}, &exp)
	for i := range 5 {
		var run struct {
			Run struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"run"`
		}
		a.ok("POST", api+"runs/create", map[string]any{"experiment_id": exp.ExperimentID}, &run)
		id := run.Run.Info.RunID
		a.ok("POST", api+"runs/log-metric", map[string]any{"run_id": id, "key": "auc", "value": 0.5 + float64(i)/100, "step": i}, nil)

		var found struct {
			Runs []struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"runs"`
		}
		b.ok("POST", api+"runs/search", map[string]any{"experiment_ids": []string{exp.ExperimentID}, "filter": "metrics.auc >= 0"}, &found)
		if len(found.Runs) != i+1 {
			t.Fatalf("after %d runs written through the first process, the second's search found %d", i+1, len(found.Runs))
		}
		var hist struct {
			Metrics []map[string]any `json:"metrics"`
		}
		b.ok("GET", api+"metrics/get-history", map[string]string{"run_id": id, "metric_key": "auc"}, &hist)
		if len(hist.Metrics) != 1 {
			t.Fatalf("run %s: the second process's history has %d points, want 1", id, len(hist.Metrics))
		}
	}
}
