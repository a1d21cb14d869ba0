package lightgbm_test

import (
	"math"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/artifact"
)

// An imported LightGBM model survives the artifact round trip and scores the same.
func TestArtifactRoundTrip(t *testing.T) {
	m, names := load(t, "genlin_fmtp_poisson_Frequency.model")
	cat := m.CategoricalFeatures()
	if _, err := artifact.FromForest("freq", artifact.LightGBM, m, names, nil, "regression", 0); err == nil ||
		!strings.Contains(err.Error(), "as categorical") {
		t.Fatalf("categorical splits on numeric features: %v", err)
	}
	if _, err := artifact.FromForest("freq", artifact.LightGBM, m, names, cat, "binary", 0.5); err == nil {
		t.Fatal("a poisson forest accepted as binary")
	}
	a, err := artifact.FromForest("freq", artifact.LightGBM, m, names, cat, "regression", 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := artifact.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	d, err := artifact.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Signature[0].Kind != "categorical" || d.Signature[5].Kind != "numeric" {
		t.Fatalf("signature %+v", d.Signature)
	}
	b2, _ := artifact.Encode(d)
	if artifact.ContentHash(b) != artifact.ContentHash(b2) {
		t.Fatal("re-encoding changed the bytes")
	}
	p := d.Predictor()
	for i, row := range table(t, "genlin_fmtp_poisson_Frequency_features.tsv") {
		if got, want := p.Predict(row), m.Predict(row); got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("row %d: %v after the round trip, %v before", i, got, want)
		}
	}

	mc, mnames := load(t, "lgmulticlass.model")
	if _, err := artifact.FromForest("mc", artifact.LightGBM, mc, mnames, nil, artifact.Multiclass, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.FromForest("mc", artifact.GBDT, mc, mnames, nil, artifact.Multiclass, 0); err == nil {
		t.Fatal("multiclass accepted for a gbdt artifact")
	}
}
