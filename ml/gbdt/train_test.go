package gbdt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/gbdt"
)

func xorLabel(x []float64, rng *rand.Rand) float64 {
	y := 0.0
	if (x[0] > 0) != (x[1] > 0) {
		y = 1
	}
	if rng.Float64() < 0.05 { // label noise
		y = 1 - y
	}
	return y
}

// XOR has no signal in either feature alone: a learner that only adds up main effects is at
// chance, trees that split on one feature and then the other are not.
func TestLearnsXOR(t *testing.T) {
	t.Parallel()
	tr := frame(4000, 1, xorLabel, uniform, uniform, uniform)
	te := frame(2000, 2, xorLabel, uniform, uniform, uniform)
	p := gbdt.DefaultParams(gbdt.Binary)
	p.NumTrees, p.MaxDepth, p.LearningRate = 30, 3, 0.3
	m := train(t, tr, p)
	if acc := accuracy(m, te); acc < 0.9 {
		t.Errorf("XOR test accuracy %.3f, want ≥ 0.9 (0.95 is the noise ceiling)", acc)
	}
}

func TestLearnsInteraction(t *testing.T) {
	t.Parallel()
	label := func(x []float64, rng *rand.Rand) float64 { return 4*x[0]*x[1] + 0.1*rng.NormFloat64() }
	tr := frame(5000, 3, label, uniform, uniform, uniform)
	te := frame(2000, 4, label, uniform, uniform, uniform)
	p := gbdt.DefaultParams(gbdt.Regression)
	p.NumTrees, p.MaxDepth, p.LearningRate = 200, 4, 0.2
	m := train(t, tr, p)
	// The target's sd is 4/3 ≈ 1.33; a main-effects model cannot get below it.
	if e := rmse(m, te); e > 0.25 {
		t.Errorf("x0·x1 test RMSE %.3f, want ≤ 0.25", e)
	}
}

func TestRegressionFitsStep(t *testing.T) {
	t.Parallel()
	label := func(x []float64, _ *rand.Rand) float64 {
		if x[0] > 0.3 {
			return 3
		}
		return -1
	}
	tr := frame(2000, 5, label, uniform)
	p := gbdt.DefaultParams(gbdt.Regression)
	p.NumTrees, p.MaxDepth, p.LearningRate = 50, 2, 0.3
	m := train(t, tr, p)
	for _, c := range []struct{ x, want float64 }{{-0.9, -1}, {0.2, -1}, {0.4, 3}, {0.95, 3}} {
		if got := m.Predict([]float64{c.x}); math.Abs(got-c.want) > 0.01 {
			t.Errorf("Predict(%v) = %v, want %v", c.x, got, c.want)
		}
	}
}

// Missingness is the signal: the label is 1 exactly when x0 is missing, and x0's values carry
// no information. Only a split that learns where missing values go can fit it.
func TestLearnsMissingDirection(t *testing.T) {
	t.Parallel()
	f := frame(3000, 6, func(x []float64, _ *rand.Rand) float64 { return 0 }, uniform, uniform)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range f.Label {
		if rng.Float64() < 0.3 {
			f.Cols[0][i] = math.NaN()
			f.Label[i] = 1
		}
	}
	p := gbdt.DefaultParams(gbdt.Binary)
	p.NumTrees, p.MaxDepth = 30, 2
	m := train(t, f, p)
	if got := m.Predict([]float64{math.NaN(), 0.5}); got < 0.9 {
		t.Errorf("P(y=1 | x0 missing) = %.3f, want ≥ 0.9", got)
	}
	for _, x := range []float64{-0.99, 0, 0.99} {
		if got := m.Predict([]float64{x, 0.5}); got > 0.1 {
			t.Errorf("P(y=1 | x0 = %v) = %.3f, want ≤ 0.1", x, got)
		}
	}
	// ±Inf are missing too.
	if a, b := m.Predict([]float64{math.Inf(1), 0.5}), m.Predict([]float64{math.NaN(), 0.5}); a != b {
		t.Errorf("Predict(+Inf) = %v, Predict(NaN) = %v; want equal", a, b)
	}
}

// categoricalFrame has one feature of 40 codes whose effects are unrelated to the codes'
// order, so numeric thresholds need many splits where a categorical split needs one.
func categoricalFrame(n int, seed uint64, kind dataset.Kind) *dataset.Frame {
	rng := rand.New(rand.NewPCG(seed, 1))
	effects := rand.New(rand.NewPCG(42, 42)).Perm(40)
	f := &dataset.Frame{Names: []string{"c", "noise"}, Kinds: []dataset.Kind{kind, dataset.Numeric},
		Cols: [][]float64{make([]float64, n), make([]float64, n)}, Label: make([]float64, n)}
	for i := range n {
		c := rng.IntN(40)
		f.Cols[0][i] = float64(c)
		f.Cols[1][i] = rng.NormFloat64()
		f.Label[i] = float64(effects[c]%2)*4 + 0.3*rng.NormFloat64()
	}
	return f
}

func TestCategoricalSplitBeatsNumeric(t *testing.T) {
	t.Parallel()
	p := gbdt.DefaultParams(gbdt.Regression)
	p.NumTrees, p.MaxDepth, p.LearningRate = 10, 2, 0.5
	var errs [2]float64
	for i, kind := range []dataset.Kind{dataset.Categorical, dataset.Numeric} {
		m := train(t, categoricalFrame(4000, 8, kind), p)
		errs[i] = rmse(m, categoricalFrame(2000, 9, kind))
	}
	if errs[0] > 0.35 || errs[0] > errs[1]/2 {
		t.Errorf("test RMSE categorical %.3f, numeric %.3f; want categorical ≤ 0.35 and under half of numeric", errs[0], errs[1])
	}
}

func TestUnseenCategoryTakesMissingDirection(t *testing.T) {
	t.Parallel()
	f := categoricalFrame(3000, 10, dataset.Categorical)
	p := gbdt.DefaultParams(gbdt.Regression)
	p.NumTrees = 5
	m := train(t, f, p)
	for _, code := range []float64{40, 1000, -3, 2.5} {
		if a, b := m.Predict([]float64{code, 0.1}), m.Predict([]float64{math.NaN(), 0.1}); a != b {
			t.Errorf("Predict(code %v) = %v, Predict(missing) = %v; want equal", code, a, b)
		}
	}
	seen := map[float64]bool{}
	for _, v := range f.Cols[0] {
		seen[v] = true
	}
	if len(m.Features[0].Categories) != len(seen) || !m.Features[0].Categorical {
		t.Errorf("model knows %d categories, training had %d", len(m.Features[0].Categories), len(seen))
	}
}

func TestEarlyStopping(t *testing.T) {
	t.Parallel()
	// Pure noise: validation loss stops improving after a few rounds.
	f := frame(3000, 11, func(_ []float64, rng *rand.Rand) float64 { return float64(rng.IntN(2)) }, uniform, uniform)
	p := gbdt.DefaultParams(gbdt.Binary)
	p.NumTrees, p.LearningRate, p.ValidationFraction, p.EarlyStoppingRounds = 500, 0.3, 0.25, 5
	var rounds []gbdt.Round
	m, err := gbdt.Train(context.Background(), f, p, func(r gbdt.Round) { rounds = append(rounds, r) })
	if err != nil {
		t.Fatal(err)
	}
	if m.BestIteration < 1 || len(m.Trees) != m.BestIteration || len(rounds) != m.BestIteration+p.EarlyStoppingRounds {
		t.Fatalf("best iteration %d, %d trees, %d rounds reported; want trees = best and rounds = best + %d",
			m.BestIteration, len(m.Trees), len(rounds), p.EarlyStoppingRounds)
	}
	best := rounds[m.BestIteration-1]
	for i, r := range rounds {
		if r.Round != i+1 || math.IsNaN(r.TrainLoss) || math.IsNaN(r.ValidationLoss) {
			t.Fatalf("round %d reported as %+v", i+1, r)
		}
		if r.ValidationLoss < best.ValidationLoss {
			t.Errorf("round %d validation loss %v beats the best round's %v", r.Round, r.ValidationLoss, best.ValidationLoss)
		}
	}
	if rounds[len(rounds)-1].TrainLoss >= rounds[0].TrainLoss {
		t.Errorf("training loss did not fall: %v → %v", rounds[0].TrainLoss, rounds[len(rounds)-1].TrainLoss)
	}
	if err := m.Validate(2); err != nil {
		t.Fatal(err)
	}
}

// Large enough that both parallel paths run: row chunks at the root, feature groups deeper.
func TestDeterministicAcrossWorkers(t *testing.T) {
	t.Parallel()
	f := frame(70_000, 12, xorLabel, uniform, uniform, uniform, uniform, uniform)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range f.Label {
		if rng.Float64() < 0.05 {
			f.Cols[2][i] = math.NaN()
		}
	}
	f.Kinds[4] = dataset.Categorical
	for i := range f.Cols[4] {
		f.Cols[4][i] = float64(rng.IntN(7))
	}
	p := gbdt.DefaultParams(gbdt.Binary)
	p.NumTrees, p.Seed, p.ValidationFraction = 4, 5, 0.1
	var out [][]byte
	for _, w := range []int{1, 2, 1, 3} {
		p.Workers = w
		b, err := json.Marshal(train(t, f, p))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	for i := 1; i < len(out); i++ {
		if !bytes.Equal(out[0], out[i]) {
			t.Fatalf("run %d's model differs from run 0's", i)
		}
	}
	p.Seed = 6
	if b, _ := json.Marshal(train(t, f, p)); bytes.Equal(out[0], b) {
		t.Errorf("another seed (another validation split) gave the same model")
	}
}

func TestCancelStopsTraining(t *testing.T) {
	t.Parallel()
	f := frame(1000, 13, xorLabel, uniform, uniform)
	ctx, cancel := context.WithCancel(context.Background())
	p := gbdt.DefaultParams(gbdt.Binary)
	p.NumTrees = 1000
	rounds := 0
	_, err := gbdt.Train(ctx, f, p, func(r gbdt.Round) {
		if rounds++; rounds == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || rounds != 3 {
		t.Errorf("after cancelling in round 3: err %v after %d rounds, want context.Canceled after 3", err, rounds)
	}
}

func TestTrainRejectsBadInput(t *testing.T) {
	t.Parallel()
	ok := frame(100, 14, xorLabel, uniform, uniform)
	bad := frame(100, 14, func([]float64, *rand.Rand) float64 { return 2 }, uniform)
	one := frame(100, 14, func([]float64, *rand.Rand) float64 { return 1 }, uniform)
	noLabel := &dataset.Frame{Names: ok.Names, Kinds: ok.Kinds, Cols: ok.Cols}
	for name, c := range map[string]struct {
		f *dataset.Frame
		p gbdt.Params
	}{
		"label 2":      {bad, gbdt.DefaultParams(gbdt.Binary)},
		"one class":    {one, gbdt.DefaultParams(gbdt.Binary)},
		"no label":     {noLabel, gbdt.DefaultParams(gbdt.Regression)},
		"no rows":      {&dataset.Frame{Names: []string{"a"}, Kinds: []dataset.Kind{0}, Cols: [][]float64{{}}, Label: []float64{}}, gbdt.DefaultParams(gbdt.Regression)},
		"nil frame":    {nil, gbdt.DefaultParams(gbdt.Regression)},
		"bad params":   {ok, gbdt.Params{}},
		"tiny holdout": {ok, gbdt.Params{Objective: gbdt.Binary, NumTrees: 1, LearningRate: 0.1, MaxDepth: 2, MinSamplesLeaf: 1, ValidationFraction: 0.001}},
	} {
		if _, err := gbdt.Train(context.Background(), c.f, c.p, nil); err == nil {
			t.Errorf("%s: Train succeeded", name)
		}
	}
}
