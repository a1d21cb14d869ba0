package gbdt

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/dataset"
)

// mixedFrame has numeric and categorical features (one with codes up to 300), some values
// missing, and a label depending on all of them, so trained trees split on every rule.
func mixedFrame(n int, seed uint64) *dataset.Frame {
	rng := rand.New(rand.NewPCG(seed, 5))
	f := &dataset.Frame{
		Names: []string{"a", "b", "c", "d", "e"},
		Kinds: []dataset.Kind{dataset.Numeric, dataset.Categorical, dataset.Numeric, dataset.Categorical, dataset.Numeric},
		Cols:  make([][]float64, 5),
		Label: make([]float64, n),
	}
	for j := range f.Cols {
		f.Cols[j] = make([]float64, n)
	}
	for i := range n {
		a, b, c, d, e := rng.NormFloat64(), float64(rng.IntN(9)), rng.NormFloat64(), float64(rng.IntN(300)), float64(rng.IntN(4))-1.5
		z := a + math.Sin(3*c) + e
		if int(b)%3 == 0 {
			z += 1.5
		}
		if int(d)%7 < 3 {
			z -= 1
		}
		for j, v := range []float64{a, b, c, d, e} {
			if rng.Float64() < 0.05 {
				v = math.NaN()
			}
			f.Cols[j][i] = v
		}
		if rng.Float64() < 1/(1+math.Exp(-z)) {
			f.Label[i] = 1
		}
	}
	return f
}

// TestCompiledWalkIsTheNodeWalk holds the compiled walk to the rules' definitions, bit for
// bit, on trained models (binary and regression, numeric and categorical splits, tree
// counts not a multiple of four) and on rows full of edge values: NaN, ±Inf, thresholds
// themselves and their neighbours, ±0, negative, fractional, unseen and huge codes.
func TestCompiledWalkIsTheNodeWalk(t *testing.T) {
	f := mixedFrame(4000, 1)
	for _, obj := range []string{Binary, Regression} {
		p := DefaultParams(obj)
		p.NumTrees, p.MaxDepth, p.MinSamplesLeaf = 23, 5, 5
		m, err := Train(context.Background(), f, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Validate(len(f.Cols)); err != nil {
			t.Fatal(err)
		}
		if m.fast == nil || len(m.fast.categorical) == 0 {
			t.Fatalf("%s: compiled %v, want a compiled walk with categorical splits", obj, m.fast)
		}
		// Candidate values per feature: every threshold and its neighbours, every code a
		// split names and its neighbours, and the special values.
		cands := make([][]float64, m.NumFeatures)
		for j := range cands {
			cands[j] = []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), -1, 0.5, 1e9, 65536, 1 << 40}
		}
		for _, tr := range m.Trees {
			for _, n := range tr.Nodes {
				if n.IsLeaf() {
					continue
				}
				c := &cands[n.Feature]
				*c = append(*c, n.Threshold, math.Nextafter(n.Threshold, math.Inf(1)), math.Nextafter(n.Threshold, math.Inf(-1)))
				for _, code := range n.Categories {
					*c = append(*c, float64(code), float64(code)+0.5, float64(code)-1, float64(code)+1)
				}
			}
		}
		rng := rand.New(rand.NewPCG(9, 9))
		row := make([]float64, m.NumFeatures)
		for k := range 200_000 {
			for j := range row {
				if k < f.Rows() && rng.IntN(2) == 0 {
					row[j] = f.Cols[j][k]
				} else {
					row[j] = cands[j][rng.IntN(len(cands[j]))]
				}
			}
			want, got := m.walkTrees(row), m.PredictRaw(row)
			if math.Float64bits(want) != math.Float64bits(got) {
				t.Fatalf("%s: row %v: compiled %v, node walk %v", obj, row, got, want)
			}
		}
		// PredictFrame takes the compiled path too.
		out := make([]float64, f.Rows())
		m.PredictFrame(f, out)
		for i := range out {
			if want := m.output(m.walkTrees(f.Row(i, row))); math.Float64bits(out[i]) != math.Float64bits(want) {
				t.Fatalf("%s: PredictFrame row %d: %v, node walk %v", obj, i, out[i], want)
			}
		}
	}
}

// TestCompileFallsBack: a categorical code beyond the bitset range leaves the node walk in
// charge; a failed Validate drops the compiled form.
func TestCompileFallsBack(t *testing.T) {
	m := &Model{
		Objective: Regression, NumFeatures: 1,
		Features: []Feature{{Categorical: true, Categories: []int32{1, maxBitsetCode}}},
		Trees: []Tree{{Nodes: []Node{
			{Feature: 0, Categories: []int32{maxBitsetCode}, Left: 1, Right: 2},
			{Feature: -1, Value: 1}, {Feature: -1, Value: 2},
		}}},
	}
	if err := m.Validate(1); err != nil {
		t.Fatal(err)
	}
	if m.fast != nil {
		t.Fatal("compiled a model with a code beyond the bitsets")
	}
	if got := m.PredictRaw([]float64{maxBitsetCode}); got != 1 {
		t.Fatalf("code %d scored %v, want 1 (left)", maxBitsetCode, got)
	}
	m.Features[0].Categories = []int32{1, 2}
	m.Trees[0].Nodes[0].Categories = []int32{2}
	if err := m.Validate(1); err != nil || m.fast == nil {
		t.Fatalf("small codes: %v, compiled %v", err, m.fast)
	}
	for x, want := range map[float64]float64{2: 1, 1: 2, 3: 2, -1: 2, math.NaN(): 2} {
		if got := m.PredictRaw([]float64{x}); got != want {
			t.Errorf("code %v scored %v, want %v", x, got, want)
		}
	}
	m.Trees[0].Nodes[0].Right = 0
	if m.Validate(1) == nil || m.fast != nil {
		t.Fatalf("invalid model kept its compiled form")
	}
}
