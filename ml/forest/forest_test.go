package forest_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/forest"
)

// stump: one split on feature 0, leaves -1 (left) and +1 (right).
func stump(t *testing.T, n forest.TreeNode) *forest.Model {
	t.Helper()
	m := forest.New(1, 1, forest.Identity)
	n.Feature, n.Left, n.Right = 0, 1, 2
	err := m.AppendTree([]forest.TreeNode{n, {Node: forest.Node{Feature: -1, Value: -1}}, {Node: forest.Node{Feature: -1, Value: 1}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(1); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSplitRules(t *testing.T) {
	nan := math.NaN()
	bits := []uint32{1 << 3} // category 3
	for _, c := range []struct {
		name string
		node forest.TreeNode
		x    float64
		left bool
	}{
		{"lgb le", forest.TreeNode{Node: forest.Node{Kind: forest.NumLE, Threshold: 1}}, 1, true},
		{"lgb none: NaN is 0", forest.TreeNode{Node: forest.Node{Kind: forest.NumLE, Threshold: -1, DefaultLeft: true}}, nan, false},
		{"lgb zero: tiny is missing", forest.TreeNode{Node: forest.Node{Kind: forest.NumLE, Missing: forest.MissingZero, Threshold: 5}}, 1e-36, false},
		{"lgb zero: NaN is zero is missing", forest.TreeNode{Node: forest.Node{Kind: forest.NumLE, Missing: forest.MissingZero, Threshold: -5, DefaultLeft: true}}, nan, true},
		{"lgb nan: default", forest.TreeNode{Node: forest.Node{Kind: forest.NumLE, Missing: forest.MissingNaN, Threshold: 5}}, nan, false},
		{"xgb float32 <", forest.TreeNode{Node: forest.Node{Kind: forest.NumLT32, Threshold: 0.1}}, 0.1 - 1e-12, false}, // equal in float32
		{"xgb nan default", forest.TreeNode{Node: forest.Node{Kind: forest.NumLT32, DefaultLeft: true}}, nan, true},
		{"lgb cat in", forest.TreeNode{Node: forest.Node{Kind: forest.CatLeft}, CatBits: bits}, 3, true},
		{"lgb cat out", forest.TreeNode{Node: forest.Node{Kind: forest.CatLeft}, CatBits: bits}, 4, false},
		{"lgb cat negative", forest.TreeNode{Node: forest.Node{Kind: forest.CatLeft}, CatBits: []uint32{1}}, -1, false},
		{"lgb cat NaN", forest.TreeNode{Node: forest.Node{Kind: forest.CatLeft}, CatBits: []uint32{1}}, nan, false},
		{"lgb cat beyond bitset", forest.TreeNode{Node: forest.Node{Kind: forest.CatLeft}, CatBits: bits}, 1e9, false},
		{"xgb cat in goes right", forest.TreeNode{Node: forest.Node{Kind: forest.CatRight}, CatBits: bits}, 3, false},
		{"xgb cat out goes left", forest.TreeNode{Node: forest.Node{Kind: forest.CatRight}, CatBits: bits}, 2, true},
		{"xgb cat negative goes left", forest.TreeNode{Node: forest.Node{Kind: forest.CatRight}, CatBits: bits}, -3, true},
	} {
		got := stump(t, c.node).Predict([]float64{c.x}) < 0
		if got != c.left {
			t.Errorf("%s: x=%v went left=%v, want %v", c.name, c.x, got, c.left)
		}
	}
}

func TestOutputsAndJSON(t *testing.T) {
	m := forest.New(1, 2, forest.Softmax)
	leaf := func(v float64) []forest.TreeNode {
		return []forest.TreeNode{{Node: forest.Node{Feature: -1, Value: v}}}
	}
	for i, v := range []float64{1, 2, 3, 4} { // round robin: output 0 gets 1+3, output 1 gets 2+4
		if err := m.AppendTree(leaf(v), i%2); err != nil {
			t.Fatal(err)
		}
	}
	m.AverageOutput = true
	m.BaseScore = []float64{0.5, 0.5}
	raw := make([]float64, 2)
	m.PredictRaw([]float64{0}, raw)
	if raw[0] != 2.5 || raw[1] != 3.5 {
		t.Fatalf("raw %v, want [2.5 3.5]", raw)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var d forest.Model
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(1); err != nil {
		t.Fatal(err)
	}
	out := make([]float64, 2)
	d.PredictInto([]float64{0}, out)
	if want := 1 / (1 + math.Exp(1)); math.Abs(out[0]-want) > 1e-15 || d.Predict([]float64{0}) != out[0] {
		t.Fatalf("softmax %v, want %v", out, want)
	}
}

func TestValidateNamesTheProblem(t *testing.T) {
	base := func() *forest.Model {
		m := forest.New(2, 1, forest.Sigmoid)
		_ = m.AppendTree([]forest.TreeNode{{Node: forest.Node{Feature: 1, Left: 1, Right: 2}}, {Node: forest.Node{Feature: -1}}, {Node: forest.Node{Feature: -1}}}, 0)
		return m
	}
	for _, c := range []struct {
		msg string
		mut func(*forest.Model)
	}{
		{"reads 3 features", func(m *forest.Model) { m.NumFeatures = 3 }},
		{"children 0 and 2", func(m *forest.Model) { m.Nodes[0].Left = 0 }},
		{"feature 5", func(m *forest.Model) { m.Nodes[0].Feature = 5 }},
		{"base scores", func(m *forest.Model) { m.BaseScore = nil }},
		{"tree outputs", func(m *forest.Model) { m.TreeOutput = nil }},
		{"adds to output 3", func(m *forest.Model) { m.TreeOutput[0] = 3 }},
		{"unknown transform", func(m *forest.Model) { m.Transform = "tanh" }},
		{"sigmoid scale", func(m *forest.Model) { m.SigmoidScale = 0 }},
		{"value NaN", func(m *forest.Model) { m.Nodes[2].Value = math.NaN() }},
		{"bitset", func(m *forest.Model) { m.Nodes[0].Kind = forest.CatLeft; m.Nodes[0].CatLen = 4 }},
		{"starts at node", func(m *forest.Model) { m.Roots[0] = 1 }},
	} {
		m := base()
		if err := m.Validate(2); err != nil {
			t.Fatal(err)
		}
		c.mut(m)
		if err := m.Validate(2); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("want an error saying %q, got %v", c.msg, err)
		}
	}
	m := forest.New(1, 1, forest.Identity)
	cyc := []forest.TreeNode{{Node: forest.Node{Feature: 0, Left: 1, Right: 1}}, {Node: forest.Node{Feature: -1}}}
	if err := m.AppendTree(cyc, 0); err == nil || !strings.Contains(err.Error(), "reached twice") {
		t.Errorf("shared child: %v", err)
	}
}
