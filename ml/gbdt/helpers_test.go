package gbdt_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/gbdt"
)

// frame builds a numeric frame from column generators.
func frame(n int, seed uint64, label func(x []float64, rng *rand.Rand) float64, cols ...func(rng *rand.Rand) float64) *dataset.Frame {
	rng := rand.New(rand.NewPCG(seed, 99))
	f := &dataset.Frame{Label: make([]float64, n)}
	for j := range cols {
		f.Names = append(f.Names, string(rune('a'+j)))
		f.Kinds = append(f.Kinds, dataset.Numeric)
		f.Cols = append(f.Cols, make([]float64, n))
	}
	x := make([]float64, len(cols))
	for i := range n {
		for j, c := range cols {
			x[j] = c(rng)
			f.Cols[j][i] = x[j]
		}
		f.Label[i] = label(x, rng)
	}
	return f
}

func uniform(rng *rand.Rand) float64 { return rng.Float64()*2 - 1 }

func train(t *testing.T, f *dataset.Frame, p gbdt.Params) *gbdt.Model {
	t.Helper()
	m, err := gbdt.Train(context.Background(), f, p, nil)
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	if err := m.Validate(len(f.Cols)); err != nil {
		t.Fatalf("trained model does not validate: %v", err)
	}
	return m
}

func predictAll(m *gbdt.Model, f *dataset.Frame) []float64 {
	out := make([]float64, f.Rows())
	m.PredictFrame(f, out)
	return out
}

func accuracy(m *gbdt.Model, f *dataset.Frame) float64 {
	ok := 0
	for i, p := range predictAll(m, f) {
		if (p > 0.5) == (f.Label[i] == 1) {
			ok++
		}
	}
	return float64(ok) / float64(f.Rows())
}

func rmse(m *gbdt.Model, f *dataset.Frame) float64 {
	s := 0.0
	for i, p := range predictAll(m, f) {
		s += (p - f.Label[i]) * (p - f.Label[i])
	}
	return math.Sqrt(s / float64(f.Rows()))
}
