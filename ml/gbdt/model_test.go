package gbdt_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/gbdt"
)

func mixedModel(t *testing.T) (*gbdt.Model, *dataset.Frame) {
	t.Helper()
	f := categoricalFrame(3000, 20, dataset.Categorical)
	for i := 0; i < len(f.Label); i += 7 {
		f.Cols[1][i] = math.NaN()
		f.Cols[0][i+3-i%3] = math.NaN()
	}
	p := gbdt.DefaultParams(gbdt.Regression)
	p.NumTrees, p.MaxCategories = 20, 25 // some codes share the "other" bin
	return train(t, f, p), f
}

func TestPredictEqualsPredictFrame(t *testing.T) {
	t.Parallel()
	m, f := mixedModel(t)
	out := predictAll(m, f)
	var row []float64
	for i := range out {
		row = f.Row(i, row)
		if got := m.Predict(row); got != out[i] {
			t.Fatalf("row %d: Predict %v, PredictFrame %v", i, got, out[i])
		}
	}
	b := frame(500, 21, xorLabel, uniform, uniform)
	bm := train(t, b, gbdt.DefaultParams(gbdt.Binary))
	out = predictAll(bm, b)
	for i := range out {
		row = b.Row(i, row)
		if p, raw := bm.Predict(row), bm.PredictRaw(row); p != out[i] || math.Abs(p-1/(1+math.Exp(-raw))) > 1e-15 {
			t.Fatalf("row %d: Predict %v, PredictFrame %v, sigmoid(PredictRaw) %v", i, p, out[i], 1/(1+math.Exp(-raw)))
		}
	}
}

func TestModelJSONRoundTrip(t *testing.T) {
	t.Parallel()
	m, f := mixedModel(t)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back gbdt.Model
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(2); err != nil {
		t.Fatal(err)
	}
	var row []float64
	for i := range f.Rows() {
		row = f.Row(i, row)
		if a, b := m.Predict(row), back.Predict(row); a != b {
			t.Fatalf("row %d: %v before JSON, %v after", i, a, b)
		}
	}
	if imp := m.FeatureImportance(); imp[0] <= imp[1] {
		t.Errorf("importance %v: want the categorical signal feature first", imp)
	}
}

func TestValidateRejectsCorruptModels(t *testing.T) {
	t.Parallel()
	m, _ := mixedModel(t)
	b, _ := json.Marshal(m)
	fresh := func() *gbdt.Model {
		var c gbdt.Model
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	root := func(c *gbdt.Model) *gbdt.Node { return &c.Trees[0].Nodes[0] }
	for _, c := range []struct {
		name, want string
		corrupt    func(*gbdt.Model)
	}{
		{"feature out of range", "out of range", func(c *gbdt.Model) { root(c).Feature = 2 }},
		{"child out of range", "child", func(c *gbdt.Model) { root(c).Right = int32(len(c.Trees[0].Nodes)) }},
		{"negative child", "child", func(c *gbdt.Model) { root(c).Left = -1 }},
		{"cycle", "child", func(c *gbdt.Model) {
			n := c.Trees[0].Nodes
			n[n[0].Left].Feature, n[n[0].Left].Left, n[n[0].Left].Right = 1, 0, n[0].Right
		}},
		{"two parents", "parents", func(c *gbdt.Model) {
			n := c.Trees[0].Nodes
			n[0].Right = n[n[0].Left].Left
		}},
		{"NaN leaf", "leaf value", func(c *gbdt.Model) {
			n := c.Trees[0].Nodes
			n[len(n)-1].Value = math.NaN()
		}},
		{"Inf base", "base score", func(c *gbdt.Model) { c.BaseScore = math.Inf(1) }},
		{"no nodes", "no nodes", func(c *gbdt.Model) { c.Trees[1].Nodes = nil }},
		{"objective", "objective", func(c *gbdt.Model) { c.Objective = "poisson" }},
		{"feature count", "features", func(c *gbdt.Model) { c.NumFeatures = 3 }},
		{"unsorted categories", "categor", func(c *gbdt.Model) { c.Features[0].Categories[0] = 99 }},
		{"categories on numeric", "categor", func(c *gbdt.Model) { c.Features[1].Categories = []int32{1} }},
		{"best iteration", "best iteration", func(c *gbdt.Model) { c.BestIteration = 3 }},
	} {
		cm := fresh()
		c.corrupt(cm)
		err := cm.Validate(2)
		if err == nil || !errors.Is(err, gbdt.ErrInvalidModel) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate = %v, want ErrInvalidModel mentioning %q", c.name, err, c.want)
		}
	}
	if err := fresh().Validate(3); err == nil {
		t.Errorf("Validate(3) of a 2-feature model passed")
	}
}
