package profile_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/profile"
)

func TestProfile(t *testing.T) {
	n := 1000
	f := &dataset.Frame{Names: []string{"x", "c"}, Kinds: []dataset.Kind{dataset.Numeric, dataset.Categorical},
		Cols: [][]float64{make([]float64, n), make([]float64, n)}, Label: make([]float64, n)}
	pred := make([]float64, n)
	for i := range n {
		f.Cols[0][i] = float64(i)
		if i%10 == 0 {
			f.Cols[0][i] = math.NaN()
		}
		f.Cols[1][i] = float64(i % 4)
		pred[i] = float64(i) / float64(n)
	}
	p, err := profile.Build(f, pred, profile.Options{Bins: 10, SampleSize: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	x := p.Features[0]
	if x.Missing != 0.1 || len(x.Numeric.Edges) != 9 || len(x.Numeric.Counts) != 10 {
		t.Fatalf("numeric profile %+v", x)
	}
	for _, c := range x.Numeric.Counts {
		if c != 90 {
			t.Fatalf("quantile bins must each hold a tenth: %v", x.Numeric.Counts)
		}
	}
	if b, _ := p.Bin("x", x.Numeric.Edges[0]); b != 0 {
		t.Fatal("a value equal to an edge belongs to the bin below it")
	}
	if b, _ := p.Bin("x", 1e9); b != 9 {
		t.Fatal("values above the last edge go to the last bin")
	}
	if p.Features[1].Categories["3"] != 0.25 || len(p.Sample.Rows) != 50 || len(p.Sample.Labels) != 50 {
		t.Fatalf("categorical / sample: %+v %d", p.Features[1].Categories, len(p.Sample.Rows))
	}
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back profile.Profile
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if string(again) != string(raw) {
		t.Fatal("a profile must survive JSON unchanged (missing values as null)")
	}
	p2, _ := profile.Build(f, pred, profile.Options{Bins: 10, SampleSize: 50, Seed: 1})
	raw2, _ := json.Marshal(p2)
	if string(raw2) != string(raw) {
		t.Fatal("the same seed must give the same profile")
	}
}

func TestValidate(t *testing.T) {
	f := &dataset.Frame{Names: []string{"x"}, Kinds: []dataset.Kind{dataset.Numeric}, Cols: [][]float64{{1, 2, 3, math.NaN()}}, Label: []float64{0, 1, 0, 1}}
	p, err := profile.Build(f, []float64{0.1, 0.2, 0.3, 0.4}, profile.Options{Bins: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(1); err != nil {
		t.Fatalf("Build's output must validate: %v", err)
	}
	if err := p.Validate(2); err == nil {
		t.Fatal("a profile of 1 feature for 2 inputs must be refused")
	}
	p.Features[0].Numeric.Counts = p.Features[0].Numeric.Counts[1:]
	if err := p.Validate(1); err == nil {
		t.Fatal("counts that do not match the edges must be refused")
	}
}
