package gauges_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/monitor/evaluate"
	"github.com/flywheel-ml/flywheel/services/monitor/gauges"
)

type nopSink struct{ evaluate.Sink }

func (nopSink) WriteScores(context.Context, evaluate.Window, []evaluate.Score) error { return nil }
func (nopSink) WritePerformance(context.Context, evaluate.Window, map[string]float64) error {
	return nil
}
func (nopSink) RecordEvent(context.Context, schemas.DriftEvent) error { return nil }

// TestGaugesFollowTheLatestWindow: scores, thresholds, verdicts, the window and quality of
// the latest window are exported; a later window replaces them.
func TestGaugesFollowTheLatestWindow(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := gauges.Wrap(nopSink{}, reg)
	ctx := context.Background()
	end := time.Unix(1_800_000_000, 0)
	w := evaluate.Window{Model: "fraud", Version: 2, Start: end.Add(-time.Minute), End: end, N: 900}
	_ = s.WriteScores(ctx, w, []evaluate.Score{{Kind: "data", Feature: "amount", Method: "psi", Score: 0.3, Threshold: 0.05, Drifted: true}})
	w.End, w.N = end.Add(time.Minute), 1000
	_ = s.WriteScores(ctx, w, []evaluate.Score{{Kind: "data", Feature: "amount", Method: "psi", Score: 0.01, Threshold: 0.05}})
	_ = s.WritePerformance(ctx, w, map[string]float64{"auc": 0.91})
	_ = s.RecordEvent(ctx, schemas.DriftEvent{Model: "fraud", Kind: schemas.DriftData})
	want := `
# HELP monitor_drift_drifted 1 when the latest window drifted for this feature and method, after Benjamini–Hochberg.
# TYPE monitor_drift_drifted gauge
monitor_drift_drifted{feature="amount",kind="data",method="psi",model="fraud",version="2"} 0
# HELP monitor_drift_score The drift statistic of the latest evaluated window (feature empty: the window's verdict, the number of drifted features).
# TYPE monitor_drift_score gauge
monitor_drift_score{feature="amount",kind="data",method="psi",model="fraud",version="2"} 0.01
# HELP monitor_drift_threshold The calibrated (or fixed) alarm threshold the latest window's statistic was compared with.
# TYPE monitor_drift_threshold gauge
monitor_drift_threshold{feature="amount",kind="data",method="psi",model="fraud",version="2"} 0.05
# HELP monitor_window_predictions Predictions in the latest evaluated window.
# TYPE monitor_window_predictions gauge
monitor_window_predictions{model="fraud",version="2"} 1000
# HELP monitor_model_performance Quality of the latest window with labels (auc, logloss, precision, recall, rmse, n …).
# TYPE monitor_model_performance gauge
monitor_model_performance{metric="auc",model="fraud",version="2"} 0.91
# HELP monitor_drift_events_total Drift events decided (before dispatch).
# TYPE monitor_drift_events_total counter
monitor_drift_events_total{kind="data",model="fraud"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "monitor_drift_drifted", "monitor_drift_score", "monitor_drift_threshold",
		"monitor_window_predictions", "monitor_model_performance", "monitor_drift_events_total"); err != nil {
		t.Fatal(err)
	}
}
