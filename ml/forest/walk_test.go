package forest_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/forest"
)

// edgy returns values that sit on the rules' edges: thresholds, their float32 and float64
// neighbours, the float32 rounding midpoints around them, LightGBM's zero threshold, ±0,
// tiny values, NaN, ±Inf and categorical codes.
func edgy(rng *rand.Rand, thresholds []float64) float64 {
	zt := float64(float32(1e-35))
	switch rng.IntN(12) {
	case 0:
		return math.NaN()
	case 1:
		return []float64{0, math.Copysign(0, -1), zt, -zt, 1e-40, -1e-40, math.Nextafter(zt, 1), math.Nextafter(-zt, -1)}[rng.IntN(8)]
	case 2:
		return []float64{math.Inf(1), math.Inf(-1), math.MaxFloat64, -math.MaxFloat64, 1e39, -1e39, math.MaxFloat32, -0x1p128}[rng.IntN(8)]
	case 3, 4:
		return float64(rng.IntN(70) - 3) // categorical codes, some negative, some past the bitsets
	case 5:
		return float64(rng.IntN(70)) + rng.Float64()*0.999 // codes with a fraction (truncated)
	default:
		t := thresholds[rng.IntN(len(thresholds))]
		t32 := float32(t)
		lo := float64(math.Nextafter32(t32, float32(math.Inf(-1))))
		hi := float64(math.Nextafter32(t32, float32(math.Inf(1))))
		cands := []float64{t, math.Nextafter(t, math.Inf(1)), math.Nextafter(t, math.Inf(-1)), float64(t32),
			(lo + float64(t32)) / 2, math.Nextafter((lo+float64(t32))/2, 0), math.Nextafter((lo+float64(t32))/2, math.Inf(-1)),
			(hi + float64(t32)) / 2, math.Nextafter((hi+float64(t32))/2, math.Inf(1)), -t}
		return cands[rng.IntN(len(cands))]
	}
}

// randomModel grows trees mixing every split kind and missing type.
func randomModel(rng *rand.Rand, nf, outputs, trees int, float32Sums bool) (*forest.Model, []float64) {
	transform := forest.Identity
	if outputs > 1 {
		transform = forest.Softmax
	}
	m := forest.New(nf, outputs, transform)
	m.Float32 = float32Sums
	var thresholds []float64
	zt := float64(float32(1e-35))
	for t := range trees {
		var nodes []forest.TreeNode
		var grow func(d int) int32
		grow = func(d int) int32 {
			i := int32(len(nodes))
			nodes = append(nodes, forest.TreeNode{})
			if d == 0 || rng.IntN(5) == 0 {
				nodes[i].Node = forest.Node{Feature: -1, Value: float64(float32(rng.NormFloat64()))}
				return i
			}
			n := forest.Node{Feature: int32(rng.IntN(nf)), Kind: uint8(rng.IntN(4)), Missing: uint8(rng.IntN(3)), DefaultLeft: rng.IntN(2) == 0}
			var bits []uint32
			switch n.Kind {
			case forest.NumLE, forest.NumLT32:
				n.Threshold = []float64{rng.NormFloat64(), 0, zt, -zt, zt / 2, -zt / 2, 1e-36, -1e-300, 0.1, -1e300, -1e39,
					float64(math.MaxFloat32), -math.MaxFloat32, 1e300, float64(rng.IntN(10))}[rng.IntN(15)]
				thresholds = append(thresholds, n.Threshold)
			default:
				bits = make([]uint32, rng.IntN(3))
				for j := range bits {
					bits[j] = rng.Uint32()
				}
			}
			n.Left = grow(d - 1)
			n.Right = grow(d - 1)
			nodes[i] = forest.TreeNode{Node: n, CatBits: bits}
			return i
		}
		grow(1 + rng.IntN(6))
		if err := m.AppendTree(nodes, t%outputs); err != nil {
			panic(err)
		}
	}
	if len(thresholds) == 0 {
		thresholds = []float64{0}
	}
	for k := range m.BaseScore {
		m.BaseScore[k] = rng.NormFloat64()
	}
	return m, thresholds
}

// The packed walk (branch-free steps, rewritten thresholds, four trees in lockstep) gives
// bit for bit what the rules' definitions give, on values chosen to sit on every edge.
func TestPackedWalkMatchesTheDefinitions(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 300 {
		nf, k := 1+rng.IntN(4), 1+rng.IntN(3)
		fast, thresholds := randomModel(rng, nf, k, 1+rng.IntN(13), round%2 == 0)
		b, err := json.Marshal(fast)
		if err != nil {
			t.Fatal(err)
		}
		var slow forest.Model // decoded, not validated: scores with the definitions
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatal(err)
		}
		if err := fast.Validate(nf); err != nil {
			t.Fatal(err)
		}
		row := make([]float64, nf)
		got, want := make([]float64, k), make([]float64, k)
		for range 200 {
			for j := range row {
				row[j] = edgy(rng, thresholds)
			}
			fast.PredictRaw(row, got)
			slow.PredictRaw(row, want)
			for o := range got {
				if math.Float64bits(got[o]) != math.Float64bits(want[o]) {
					t.Fatalf("round %d row %v output %d: packed %v, definition %v", round, row, o, got[o], want[o])
				}
			}
		}
	}
}

// LightGBM's prediction API drops values with |x| <= 1e-35 from the row, so they compare
// as 0 whatever the missing type; NaN reads as 0 unless the type is NaN.
func TestLightGBMZeroThreshold(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name string
		n    forest.Node
		x    float64
		left bool
	}{
		{"tiny positive is 0 <= 0", forest.Node{Threshold: 0}, 1e-40, true},
		{"tiny negative is 0, not <= -1e-36", forest.Node{Threshold: -1e-36}, -1e-36, false},
		{"just past the zero threshold is itself", forest.Node{Threshold: -1e-36}, -2e-35, true},
		{"NaN type: tiny is still 0", forest.Node{Threshold: -1e-36, Missing: forest.MissingNaN, DefaultLeft: true}, -1e-36, false},
		{"NaN type: NaN takes the default", forest.Node{Threshold: 5, Missing: forest.MissingNaN}, nan, false},
		{"None type: NaN is 0 > -1", forest.Node{Threshold: -1, DefaultLeft: true}, nan, false},
		{"Zero type: -0 takes the default", forest.Node{Threshold: -5, Missing: forest.MissingZero, DefaultLeft: true}, math.Copysign(0, -1), true},
		{"Zero type: 1e-35 (float32) takes the default", forest.Node{Threshold: 5, Missing: forest.MissingZero}, float64(float32(1e-35)), false},
		{"Zero type: 2e-35 is compared", forest.Node{Threshold: 5, Missing: forest.MissingZero}, 2e-35, true},
	} {
		for _, validated := range []bool{true, false} {
			m := forest.New(1, 1, forest.Identity)
			n := c.n
			n.Feature, n.Left, n.Right = 0, 1, 2
			if err := m.AppendTree([]forest.TreeNode{{Node: n}, {Node: forest.Node{Feature: -1, Value: -1}}, {Node: forest.Node{Feature: -1, Value: 1}}}, 0); err != nil {
				t.Fatal(err)
			}
			if validated {
				if err := m.Validate(1); err != nil {
					t.Fatal(err)
				}
			}
			if got := m.Predict([]float64{c.x}) < 0; got != c.left {
				t.Errorf("%s (validated %v): x=%v went left=%v", c.name, validated, c.x, got)
			}
		}
	}
}

// XGBoost sums float32 leaves into a float32 margin that starts at the base score, in
// tree order, and applies its float32 sigmoid.
func TestFloat32Arithmetic(t *testing.T) {
	m := forest.New(1, 1, forest.Sigmoid)
	m.Float32 = true
	m.BaseScore[0] = float64(float32(-0.4054651))
	leaves := []float32{0.1, 1e-8, 3e-9, -0.7, 1e-8}
	for _, v := range leaves {
		if err := m.AppendTree([]forest.TreeNode{{Node: forest.Node{Feature: -1, Value: float64(v)}}}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Validate(1); err != nil {
		t.Fatal(err)
	}
	acc := float32(m.BaseScore[0])
	for _, v := range leaves {
		acc += v
	}
	raw := make([]float64, 1)
	m.PredictRaw([]float64{0}, raw)
	if raw[0] != float64(acc) {
		t.Fatalf("margin %v, want the float32 sum %v", raw[0], acc)
	}
	x := min(-acc, 88.7)
	want := 1 / (float32(math.Exp(float64(x))) + 1 + 1e-16)
	if p := m.Predict([]float64{0}); p != float64(want) {
		t.Fatalf("probability %v, want %v", p, want)
	}
}

// FuzzValidate: any JSON either fails Validate or gives a model that scores any row, and
// Check agrees with Validate.
func FuzzValidate(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 4 {
		m, _ := randomModel(rng, 2, 1+i%3, 3, i%2 == 0)
		b, err := json.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m forest.Model
		if json.Unmarshal(b, &m) != nil || m.NumFeatures > 64 {
			return
		}
		checked := m.Check(m.NumFeatures)
		if err := m.Validate(m.NumFeatures); (err == nil) != (checked == nil) {
			t.Fatalf("Check %v, Validate %v", checked, err)
		} else if err != nil {
			return
		}
		out := make([]float64, m.NumOutputs)
		row := make([]float64, m.NumFeatures)
		for _, v := range []float64{0, math.NaN(), -1, 3, 1e300, math.Inf(-1)} {
			for i := range row {
				row[i] = v
			}
			m.PredictInto(row, out)
		}
	})
}
