package modelspec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
)

func TestShippedSpecsLoad(t *testing.T) {
	specs, err := modelspec.Load(schemas.Models())
	if err != nil {
		t.Fatal(err)
	}
	f := specs["fraud"]
	if f == nil {
		t.Fatal("no fraud spec")
	}
	if f.Task != modelspec.Binary || f.Label.Stream != "fraud_labels" || f.Label.EventIDField != "transaction_id" ||
		time.Duration(f.Training.Window) != 7*24*time.Hour || f.Threshold != 0.5 || f.Promotion != modelspec.Auto ||
		time.Duration(f.Cooldown) != 10*time.Minute || len(f.RequestFields) != 4 || len(f.Gates) != 2 {
		t.Fatalf("unexpected fraud spec: %+v", f)
	}
	if refs := f.FeatureRefs(); refs[0].View != "card_activity" || refs[0].Feature != "txn_count_10m" {
		t.Fatalf("feature refs %v", refs)
	}
}

const valid = `
name: m
task: binary
prediction_stream: transactions
label: {stream: fraud_labels, field: is_fraud, event_id_field: transaction_id, horizon: 30d}
request_fields: [{name: amount, kind: numeric}]
features: [card_activity:txn_count_1h]
algorithm: {name: gbdt, params: {num_trees: 10}}
training: {window: 7d, holdout: 0.2, min_rows: 100, label_rate: {min: 0, max: 0.5}}
gates: [{metric: auc, threshold: 0.7, greater_is_better: true}]
`

func TestSpecErrorsNameTheField(t *testing.T) {
	if _, err := modelspec.Parse("m.yaml", []byte(valid)); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	for change, want := range map[[2]string]string{
		{"task: binary", "task: multiclass"}:                   "m.yaml: task:",
		{"field: is_fraud, ", ""}:                              "label.field",
		{"horizon: 30d", "horizon: 0"}:                         "label.horizon",
		{"kind: numeric", "kind: text"}:                        "request_fields[0].kind",
		{"card_activity:txn_count_1h", "txn_count_1h"}:         "features[0]",
		{"name: gbdt", "name: forest"}:                         "algorithm.name",
		{"holdout: 0.2", "holdout: 1.5"}:                       "training.holdout",
		{"min_rows: 100", "min_rows: 1"}:                       "training.min_rows",
		{"min: 0, max: 0.5", "min: 0.6, max: 0.5"}:             "training.label_rate",
		{"metric: auc", "metric: rmse"}:                        "gates[0].metric",
		{", greater_is_better: true", ""}:                      "gates[0].greater_is_better",
		{"threshold: 0.7", "min_absolute_change: -0.1"}:        "gates[0].min_absolute_change",
		{"threshold: 0.7", "min_relative_change: 2"}:           "gates[0].min_relative_change",
		{"task: binary", "task: binary\npromotion: sometimes"}: "promotion",
		{"task: binary", "task: binary\nthreshold: 1.5"}:       "threshold",
		{"task: binary", "task: binary\nunknown_key: 1"}:       "field unknown_key not found",
		{"window: 7d", "window: 7 days"}:                       "not a duration",
		{"[{name: amount, kind: numeric}]", "[{name: amount, kind: numeric}, {name: amount, kind: numeric}]"}: "request_fields[1].name",
	} {
		in := strings.Replace(valid, change[0], change[1], 1)
		_, err := modelspec.Parse("m.yaml", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q → %q: got %v, want an error naming %q", change[0], change[1], err, want)
		}
	}
}

func f(v float64) *float64 { return &v }
func b(v bool) *bool       { return &v }

func TestGatesFollowMLflowSemantics(t *testing.T) {
	gates := []modelspec.Gate{
		{Metric: "auc", Threshold: f(0.7), MinAbsoluteChange: f(0.01), GreaterIsBetter: b(true)},
		{Metric: "log_loss", MinRelativeChange: f(0.1), GreaterIsBetter: b(false)},
	}
	// First model: only the thresholds apply.
	res := modelspec.Evaluate(gates, map[string]float64{"auc": 0.75, "log_loss": 0.5}, nil)
	if !modelspec.Passed(res) {
		t.Fatalf("first model should pass on thresholds alone: %+v", res)
	}
	// Against a champion: auc must gain 0.01, log loss must drop 10 %.
	res = modelspec.Evaluate(gates, map[string]float64{"auc": 0.805, "log_loss": 0.44}, map[string]float64{"auc": 0.80, "log_loss": 0.5})
	if res[0].Passed || !strings.Contains(res[0].Failures[0], "min_absolute_change") {
		t.Fatalf("auc gained only 0.005: %+v", res[0])
	}
	if !res[1].Passed {
		t.Fatalf("log loss dropped 12 %%: %+v", res[1])
	}
	res = modelspec.Evaluate(gates, map[string]float64{"auc": 0.5, "log_loss": 0.6}, map[string]float64{"auc": 0.8, "log_loss": 0.5})
	if res[0].Passed || len(res[0].Failures) != 2 || res[1].Passed || modelspec.Passed(res) {
		t.Fatalf("shuffled-label candidate must fail both: %+v", res)
	}
	if !strings.Contains(res[0].Failures[0], "threshold: 0.5 is not >= 0.7") {
		t.Fatalf("failure must say by how much: %q", res[0].Failures[0])
	}
	res = modelspec.Evaluate(gates, map[string]float64{"log_loss": 0.1}, nil)
	if res[0].Passed {
		t.Fatal("a missing metric fails its gate")
	}
	// A champion value of 0 falls back to a plain comparison.
	res = modelspec.Evaluate([]modelspec.Gate{{Metric: "brier", MinRelativeChange: f(0.5), GreaterIsBetter: b(false)}},
		map[string]float64{"brier": 0}, map[string]float64{"brier": 0})
	if !res[0].Passed {
		t.Fatalf("equal to a zero champion passes the fallback: %+v", res)
	}
}
