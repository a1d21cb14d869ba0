package xgboost_test

import (
	"math"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/ml/forest/xgboost"
)

// An imported XGBoost model becomes a normal artifact and still predicts what XGBoost
// predicts after the round trip.
func TestArtifactRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name, task string
		threshold  float64
	}{{"categorical", "binary", 0.5}, {"poisson", "regression", 0}, {"multiclass", artifact.Multiclass, 0}} {
		m, names := load(t, c.name, xgboost.Options{})
		a, err := artifact.FromForest(c.name, m, names, c.threshold)
		if err != nil {
			t.Fatal(err)
		}
		if a.Algorithm != artifact.XGBoost || a.Task != c.task {
			t.Fatalf("%s: algorithm %s, task %s", c.name, a.Algorithm, a.Task)
		}
		b, err := artifact.Encode(a)
		if err != nil {
			t.Fatal(err)
		}
		d, err := artifact.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		want := table(t, c.name+"_pred.tsv")
		for i, row := range table(t, c.name+"_input.tsv") {
			if got := d.Predictor().Predict(row); math.Float64bits(got) != math.Float64bits(want[i][0]) {
				t.Fatalf("%s row %d: %v, XGBoost %v", c.name, i, got, want[i][0])
			}
		}
		if c.name == "categorical" && (a.Signature[1].Kind != "categorical" || a.Signature[0].Kind != "numeric") {
			t.Fatalf("signature %+v", a.Signature)
		}
	}
}
