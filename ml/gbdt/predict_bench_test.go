package gbdt_test

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/gbdt"
)

// servingFrame is synthetic data shaped like a serving model's input: 16 features, of which
// 3 categorical (12, 60 and 400 codes, the last more than MaxCategories keeps as bins), about
// 3 % of all values missing, and a binary label depending on most of them.
func servingFrame(n int, seed uint64) *dataset.Frame {
	const nf = 16
	catCodes := map[int]int{3: 12, 8: 60, 13: 400}
	rng := rand.New(rand.NewPCG(seed, 7))
	effects := rand.New(rand.NewPCG(3, 3)) // the same category effects for every seed
	catEffect := map[int][]float64{}
	for j, k := range catCodes {
		e := make([]float64, k)
		for c := range e {
			e[c] = effects.NormFloat64()
		}
		catEffect[j] = e
	}
	f := &dataset.Frame{Label: make([]float64, n)}
	for j := range nf {
		f.Names = append(f.Names, string(rune('a'+j)))
		kind := dataset.Numeric
		if catCodes[j] > 0 {
			kind = dataset.Categorical
		}
		f.Kinds = append(f.Kinds, kind)
		f.Cols = append(f.Cols, make([]float64, n))
	}
	for i := range n {
		z := 0.0
		for j := range nf {
			var v float64
			if k := catCodes[j]; k > 0 {
				c := rng.IntN(k)
				v = float64(c)
				z += catEffect[j][c]
			} else {
				v = rng.NormFloat64()
				switch j % 4 {
				case 0:
					z += 0.8 * v
				case 1:
					z += math.Sin(2 * v)
				case 2:
					z += 0.5 * v * f.Cols[j-1][i]
				}
			}
			if rng.Float64() < 0.03 {
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

// servingModel is a 200-tree, depth-6 binary model trained on servingFrame, built once;
// 56 % of its splits are categorical.
var servingModel = sync.OnceValues(func() (*gbdt.Model, *dataset.Frame) { return trainServing(false) })

// numericServingModel is servingModel with every feature read as numeric (the codes as
// numbers), the shape of a model over card_activity's aggregates.
var numericServingModel = sync.OnceValues(func() (*gbdt.Model, *dataset.Frame) { return trainServing(true) })

func trainServing(numeric bool) (*gbdt.Model, *dataset.Frame) {
	f, test := servingFrame(20_000, 1), servingFrame(4096, 2)
	if numeric {
		for j := range f.Kinds {
			f.Kinds[j], test.Kinds[j] = dataset.Numeric, dataset.Numeric
		}
	}
	p := gbdt.DefaultParams(gbdt.Binary)
	p.NumTrees, p.MaxDepth, p.MinSamplesLeaf = 200, 6, 5
	m, err := gbdt.Train(context.Background(), f, p, nil)
	if err != nil {
		panic(err)
	}
	if err := m.Validate(len(f.Cols)); err != nil {
		panic(err)
	}
	return m, test
}

// BenchmarkPredictRow is serving's call: Predict of one row of a 200-tree depth-6 binary
// model, over 4,096 distinct rows in turn. ns/op is ns per row.
func BenchmarkPredictRow(b *testing.B) { benchmarkPredictRow(b, servingModel) }

// BenchmarkPredictRowNumeric is BenchmarkPredictRow with numeric splits only.
func BenchmarkPredictRowNumeric(b *testing.B) { benchmarkPredictRow(b, numericServingModel) }

func benchmarkPredictRow(b *testing.B, model func() (*gbdt.Model, *dataset.Frame)) {
	m, f := model()
	rows := make([][]float64, f.Rows())
	for i := range rows {
		rows[i] = f.Row(i, nil)
	}
	sink := 0.0
	m.Predict(rows[0]) // anything built on first use is not the serving steady state
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		sink += m.Predict(rows[i&(len(rows)-1)])
	}
	if math.IsNaN(sink) {
		b.Fatal("NaN prediction")
	}
}

// BenchmarkPredictRowParallel is BenchmarkPredictRow from GOMAXPROCS goroutines sharing the
// model, as serving calls it.
func BenchmarkPredictRowParallel(b *testing.B) {
	m, f := servingModel()
	rows := make([][]float64, f.Rows())
	for i := range rows {
		rows[i] = f.Row(i, nil)
	}
	m.Predict(rows[0])
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		sink := 0.0
		for i := 0; pb.Next(); i++ {
			sink += m.Predict(rows[i&(len(rows)-1)])
		}
		if math.IsNaN(sink) {
			b.Error("NaN prediction")
		}
	})
}

// BenchmarkPredictFrame scores the 4,096 rows with PredictFrame; ns/row is per row.
func BenchmarkPredictFrame(b *testing.B) {
	m, f := servingModel()
	out := make([]float64, f.Rows())
	m.PredictFrame(f, out)
	b.ResetTimer()
	for b.Loop() {
		m.PredictFrame(f, out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*f.Rows()), "ns/row")
}
