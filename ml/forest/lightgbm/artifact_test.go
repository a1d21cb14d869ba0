package lightgbm_test

import (
	"math"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/ml/forest"
)

// An imported LightGBM model becomes a normal artifact — categorical features from the
// model, codes without a vocabulary — that survives the round trip and scores the same.
func TestArtifactRoundTrip(t *testing.T) {
	m, names := load(t, "genlin_fmtp_poisson_Frequency.model")
	a, err := artifact.FromForest("freq", m, names, 0.5) // the threshold is for binary models only
	if err != nil {
		t.Fatal(err)
	}
	if a.Threshold != 0 {
		t.Fatalf("threshold %v for a regression", a.Threshold)
	}
	a, err = artifact.FromForest("freq", m, names, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Algorithm != artifact.LightGBM || a.Task != "regression" {
		t.Fatalf("algorithm %s, task %s", a.Algorithm, a.Task)
	}
	for i, f := range a.Signature {
		if want := map[bool]string{true: "categorical", false: "numeric"}[i < 5]; f.Kind != want || f.Name != names[i] {
			t.Fatalf("signature %d: %+v, want %s %s", i, f, want, names[i])
		}
	}
	b, err := artifact.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	d, err := artifact.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := artifact.Encode(d); artifact.ContentHash(b) != artifact.ContentHash(b2) {
		t.Fatal("re-encoding changed the bytes")
	}
	p := d.Predictor()
	for i, row := range table(t, "genlin_fmtp_poisson_Frequency_features.tsv") {
		if got, want := p.Predict(row), m.Predict(row); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("row %d: %v after the round trip, %v before", i, got, want)
		}
	}

	mc, mnames := load(t, "lg_kddcup99.model")
	a, err = artifact.FromForest("kdd", mc, mnames, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Task != artifact.Multiclass || a.Classes != 13 {
		t.Fatalf("task %s, %d classes", a.Task, a.Classes)
	}
	b, _ = artifact.Encode(a)
	if d, err = artifact.Decode(b); err != nil {
		t.Fatal(err)
	}
	got, want := make([]float64, 13), make([]float64, 13)
	for i, row := range table(t, "kddcup99_test.tsv") {
		mc.PredictInto(row, want)
		d.Predictor().(*forest.Model).PredictInto(row, got)
		for k := range got {
			if math.Float64bits(got[k]) != math.Float64bits(want[k]) {
				t.Fatalf("row %d class %d: %v after the round trip, %v before", i, k, got[k], want[k])
			}
		}
	}
}
