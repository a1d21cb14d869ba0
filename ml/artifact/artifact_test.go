package artifact_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/gbdt"
	"github.com/flywheel-ml/flywheel/ml/profile"
)

func sampleArtifact(t testing.TB) (*artifact.Artifact, *dataset.Frame) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	n := 400
	f := &dataset.Frame{Names: []string{"amount", "channel"}, Kinds: []dataset.Kind{dataset.Numeric, dataset.Categorical},
		Cols: [][]float64{make([]float64, n), make([]float64, n)}, Label: make([]float64, n)}
	for i := range n {
		f.Cols[0][i] = rng.Float64() * 100
		f.Cols[1][i] = float64(rng.IntN(3))
		if f.Cols[0][i] > 60 && f.Cols[1][i] == 2 {
			f.Label[i] = 1
		}
		if i%17 == 0 {
			f.Cols[0][i] = math.NaN()
		}
	}
	p := gbdt.DefaultParams(gbdt.Binary)
	p.NumTrees, p.MinSamplesLeaf = 10, 5
	m, err := gbdt.Train(context.Background(), f, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	pred := make([]float64, n)
	m.PredictFrame(f, pred)
	prof, err := profile.Build(f, pred, profile.Options{SampleSize: 20, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	return &artifact.Artifact{Model: "fraud", Task: "binary", Algorithm: artifact.GBDT, Threshold: 0.5,
		Signature: []artifact.Feature{{Name: "amount", Kind: "numeric", Source: "request"},
			{Name: "channel", Kind: "categorical", Source: "request", Vocabulary: []string{"atm", "ecom", "pos"}}},
		Params: []byte(`{"num_trees":10}`), Metrics: map[string]float64{"auc": 0.9, "pr_auc": math.NaN()}, Profile: prof, GBDT: m}, f
}

func TestRoundTripIsDeterministic(t *testing.T) {
	a, f := sampleArtifact(t)
	b1, err := artifact.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := artifact.Encode(a)
	if artifact.ContentHash(b1) != artifact.ContentHash(b2) {
		t.Fatal("the same artifact must encode to the same bytes")
	}
	back, err := artifact.Decode(b1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := back.Metrics["pr_auc"]; ok {
		t.Fatal("a NaN metric is left out")
	}
	row := make([]float64, 2)
	for i := range f.Rows() {
		row = f.Row(i, row)
		if a.Predictor().Predict(row) != back.Predictor().Predict(row) {
			t.Fatalf("row %d scores differently after a round trip", i)
		}
	}
	if again, _ := artifact.Encode(back); artifact.ContentHash(again) != artifact.ContentHash(b1) {
		t.Fatal("decode then encode must give the same bytes")
	}
}

func TestDecodeNamesTheProblem(t *testing.T) {
	a, _ := sampleArtifact(t)
	good, _ := artifact.Encode(a)
	for name, c := range map[string]struct {
		in   []byte
		want string
	}{
		"empty":         {nil, "not a Flywheel model artifact"},
		"other format":  {[]byte("flywheel-model 2\n{}"), `format "flywheel-model 2" is not supported`},
		"truncated":     {good[:len(good)/2], "truncated or damaged"},
		"trailing data": {append(append([]byte(nil), good...), []byte(` {}`)...), "data after the model"},
		"bad node":      {[]byte(strings.Replace(string(good), `"l":1`, `"l":99999`, 1)), "artifact:"},
		"no signature":  {[]byte(strings.Replace(string(good), `"signature":[`, `"signature":[],"x":[`, 1)), "unknown field"},
		"kind mismatch": {[]byte(strings.Replace(string(good), `"kind":"numeric"`, `"kind":"categorical"`, 1)), "signature but not in the model"},
	} {
		_, err := artifact.Decode(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	a, _ := sampleArtifact(f)
	good, _ := artifact.Encode(a)
	f.Add(good)
	f.Add(good[:len(good)/3])
	f.Add([]byte("flywheel-model 1\n{}"))
	f.Add([]byte(`flywheel-model 1
{"format":1,"model":"m","task":"binary","algorithm":"gbdt","threshold":0.5,"signature":[{"name":"a","kind":"numeric"}],"gbdt":{"objective":"binary","num_features":1,"features":[{}],"trees":[{"nodes":[{"f":0,"l":1,"r":2},{"f":-1},{"f":-1}]}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := artifact.Decode(b)
		if err != nil {
			return
		}
		row := make([]float64, len(a.Signature))
		for i := range row {
			row[i] = math.NaN()
		}
		_ = a.Predictor().Predict(row) // a decoded artifact must be safe to score
	})
}
