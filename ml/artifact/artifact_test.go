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
	"github.com/flywheel-ml/flywheel/ml/linear"
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
	for _, kind := range []string{artifact.Logistic, artifact.Ridge} {
		lin, err := artifact.Encode(linearArtifact(f, kind))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(lin)
		f.Add(lin[:len(lin)*2/3])
	}
	for _, trainer := range []string{artifact.LightGBM, artifact.XGBoost} {
		for _, task := range []string{"binary", "regression", artifact.Multiclass} {
			fb, err := artifact.Encode(forestArtifact(f, trainer, task))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(fb)
		}
	}
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

func linearArtifact(t testing.TB, kind string) *artifact.Artifact {
	t.Helper()
	a, f := sampleArtifact(t)
	train, task := linear.TrainLogistic, "binary"
	if kind == artifact.Ridge {
		train, task = linear.TrainRidge, "regression"
		a.Threshold = 0
	}
	m, err := train(context.Background(), f, linear.Params{})
	if err != nil {
		t.Fatal(err)
	}
	a.Algorithm, a.Task, a.GBDT, a.Linear = kind, task, nil, m
	a.Signature[0].Default = new(float64)
	return a
}

func TestLinearRoundTrip(t *testing.T) {
	for _, kind := range []string{artifact.Logistic, artifact.Ridge} {
		a := linearArtifact(t, kind)
		b, err := artifact.Encode(a)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		back, err := artifact.Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		row := []float64{42, 1}
		if back.Predictor().Predict(row) != a.Predictor().Predict(row) || *back.Signature[0].Default != 0 {
			t.Fatalf("%s: the round trip changed the model or the default", kind)
		}
	}
}

func TestDecodeRefusesAnInconsistentProfile(t *testing.T) {
	a, _ := sampleArtifact(t)
	good, _ := artifact.Encode(a)
	s := string(good)
	for name, c := range map[string]struct{ in, want string }{
		"counts":  {strings.Replace(s, `"counts":[`, `"counts":[1,`, 1), "counts for"},
		"edges":   {strings.Replace(strings.Replace(s, `"edges":[`, `"edges":[1e300,`, 1), `"counts":[`, `"counts":[0,`, 1), "not strictly ascending"},
		"kind":    {strings.Replace(s, `"kind":"categorical","rows"`, `"kind":"numeric","rows"`, 1), "profile feature 1"},
		"missing": {strings.Replace(s, `"missing_rate":0`, `"missing_rate":2`, 1), "missing rate"},
		"labels":  {strings.Replace(s, `"labels":[`, `"labels":[1,`, 1), "labels for"},
	} {
		if c.in == s {
			t.Fatalf("%s: the test's replacement did not apply", name)
		}
		_, err := artifact.Decode([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
}

func TestDecodeRefusesABadDefault(t *testing.T) {
	a := linearArtifact(t, artifact.Logistic)
	b, _ := artifact.Encode(a)
	bad := strings.Replace(string(b), `"vocabulary":["atm"`, `"default":7,"vocabulary":["atm"`, 1)
	if _, err := artifact.Decode([]byte(bad)); err == nil || !strings.Contains(err.Error(), "not a code of its vocabulary") {
		t.Fatalf("got %v", err)
	}
}
