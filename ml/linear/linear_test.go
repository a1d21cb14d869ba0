package linear_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/linear"
)

type reference struct {
	X              [][]*float64
	Y, T           []float64
	LrCoef         []float64 `json:"lr_coef"`
	LrIntercept    float64   `json:"lr_intercept"`
	RidgeCoef      []float64 `json:"ridge_coef"`
	RidgeIntercept float64   `json:"ridge_intercept"`
}

func load(t *testing.T) (reference, *dataset.Frame) {
	t.Helper()
	raw, err := os.ReadFile("testdata/sklearn_linear.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	d := len(ref.X[0])
	f := &dataset.Frame{Cols: make([][]float64, d)}
	for j := range d {
		f.Names = append(f.Names, string(rune('a'+j)))
		f.Kinds = append(f.Kinds, dataset.Numeric)
		f.Cols[j] = make([]float64, len(ref.X))
		for i, row := range ref.X {
			f.Cols[j][i] = math.NaN()
			if row[j] != nil {
				f.Cols[j][i] = *row[j]
			}
		}
	}
	return ref, f
}

// The same objective as scikit-learn's, so the same coefficients.
func TestLogisticMatchesScikitLearn(t *testing.T) {
	ref, f := load(t)
	f.Label = ref.Y
	m, err := linear.TrainLogistic(context.Background(), f, linear.Params{L2: 1, Tol: 1e-8, MaxIter: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range ref.LrCoef {
		if math.Abs(m.Weights[k]-w) > 1e-4*math.Max(1, math.Abs(w)) {
			t.Errorf("coef %d = %.6f, scikit-learn %.6f", k, m.Weights[k], w)
		}
	}
	if math.Abs(m.Intercept-ref.LrIntercept) > 1e-4 {
		t.Errorf("intercept %.6f, scikit-learn %.6f", m.Intercept, ref.LrIntercept)
	}
}

func TestRidgeMatchesScikitLearn(t *testing.T) {
	ref, f := load(t)
	f.Label = ref.T
	m, err := linear.TrainRidge(context.Background(), f, linear.Params{L2: 1})
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range ref.RidgeCoef {
		if math.Abs(m.Weights[k]-w) > 1e-9*math.Max(1, math.Abs(w)) {
			t.Errorf("coef %d = %.12f, scikit-learn %.12f", k, m.Weights[k], w)
		}
	}
	if math.Abs(m.Intercept-ref.RidgeIntercept) > 1e-9 {
		t.Errorf("intercept %.12f, scikit-learn %.12f", m.Intercept, ref.RidgeIntercept)
	}
}

func TestStandardisationAndCategoriesLiveInTheModel(t *testing.T) {
	f := &dataset.Frame{Names: []string{"x", "c"}, Kinds: []dataset.Kind{dataset.Numeric, dataset.Categorical},
		Cols: [][]float64{{1000, 2000, 3000, 4000, math.NaN(), 6000}, {0, 1, 2, 0, 1, 2}}, Label: []float64{0, 0, 1, 0, 1, 1}}
	m, err := linear.TrainLogistic(context.Background(), f, linear.Params{L2: 1, Standardize: true})
	if err != nil {
		t.Fatal(err)
	}
	if m.Inputs[0].Scale < 1000 || len(m.Inputs[1].Categories) != 3 || len(m.Weights) != 4 {
		t.Fatalf("model %+v", m)
	}
	if p := m.Predict([]float64{math.NaN(), 7}); !(p > 0 && p < 1) {
		t.Fatalf("missing and unseen values must still score: %v", p)
	}
	if err := m.Validate(2); err != nil {
		t.Fatal(err)
	}
	m.Inputs[1].Offset = 99
	if m.Validate(2) == nil {
		t.Fatal("an out-of-range offset must be refused")
	}
}
