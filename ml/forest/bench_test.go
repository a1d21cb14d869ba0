package forest_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/forest"
)

// synthetic builds a binary model of complete trees (2^depth leaves each) over nf
// features with thresholds and values drawn from rng, split kind kind. Rows from rows()
// reach every leaf.
func synthetic(rng *rand.Rand, trees, depth, nf int, kind uint8) *forest.Model {
	m := forest.New(nf, 1, forest.Sigmoid)
	m.Float32 = kind == forest.NumLT32
	for range trees {
		var nodes []forest.TreeNode
		var grow func(d int) int32
		grow = func(d int) int32 {
			i := int32(len(nodes))
			nodes = append(nodes, forest.TreeNode{})
			if d == depth {
				nodes[i].Node = forest.Node{Feature: -1, Value: float64(float32(rng.NormFloat64() * 0.1))}
				return i
			}
			n := forest.Node{Feature: int32(rng.IntN(nf)), Kind: kind, Threshold: float64(float32(rng.NormFloat64())),
				DefaultLeft: rng.IntN(2) == 0, Missing: forest.MissingNaN}
			n.Left = grow(d + 1)
			n.Right = grow(d + 1)
			nodes[i].Node = n
			return i
		}
		grow(0)
		if err := m.AppendTree(nodes, 0); err != nil {
			panic(err)
		}
	}
	if err := m.Validate(nf); err != nil {
		panic(err)
	}
	return m
}

func rows(rng *rand.Rand, n, nf int) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		out[i] = make([]float64, nf)
		for j := range out[i] {
			out[i][j] = rng.NormFloat64()
			if rng.IntN(20) == 0 {
				out[i][j] = math.NaN()
			}
		}
	}
	return out
}

// BenchmarkPredict: 200 complete trees of depth 6 (127 nodes each) over 30 features, the
// size of a typical binary fraud model; ns/op is the time to score one row.
func BenchmarkPredict(b *testing.B) {
	for _, c := range []struct {
		name string
		kind uint8
	}{{"xgboost-200x6", forest.NumLT32}, {"lightgbm-200x6", forest.NumLE}} {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			m := synthetic(rng, 200, 6, 30, c.kind)
			rs := rows(rng, 1024, 30)
			b.ReportAllocs()
			b.ResetTimer()
			s := 0.0
			for i := 0; i < b.N; i++ {
				s += m.Predict(rs[i&1023])
			}
			if math.IsNaN(s) {
				b.Fatal("NaN")
			}
		})
	}
}
