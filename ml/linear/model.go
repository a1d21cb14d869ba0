// Package linear trains and scores linear models: logistic regression (binary, L2, fitted by
// L-BFGS) and ridge regression (closed form). Both keep their preprocessing in the model, so
// prediction takes raw values: missing numeric values are replaced by the training mean,
// numeric inputs are optionally standardised with the training mean and standard deviation,
// and categorical codes are one-hot encoded over the codes seen in training (any other code,
// or a missing one, contributes nothing).
package linear

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Kinds of model.
const (
	Logistic = "logistic"
	Ridge    = "ridge"
)

// Input is how one frame column enters the model.
type Input struct {
	Categorical bool    `json:"categorical,omitempty"`
	Mean        float64 `json:"mean,omitempty"`  // imputed for a missing numeric value
	Scale       float64 `json:"scale,omitempty"` // numeric: (v - Mean) / Scale; 1 without standardisation
	Center      float64 `json:"center,omitempty"`
	// Categories are the one-hot codes, ascending; code Categories[k] has weight Offset+k.
	Categories []int32 `json:"categories,omitempty"`
	Offset     int     `json:"offset"`
}

// Model is a fitted linear model as plain data.
type Model struct {
	Kind      string    `json:"kind"`
	Inputs    []Input   `json:"inputs"`
	Weights   []float64 `json:"weights"`
	Intercept float64   `json:"intercept"`
}

func (in *Input) width() int {
	if in.Categorical {
		return len(in.Categories)
	}
	return 1
}

// margin is the linear predictor of a raw row.
func (m *Model) margin(row []float64) float64 {
	z := m.Intercept
	for j := range m.Inputs {
		in := &m.Inputs[j]
		v := row[j]
		if in.Categorical {
			if v != v {
				continue
			}
			if k, ok := slices.BinarySearch(in.Categories, int32(v)); ok && float64(int32(v)) == v {
				z += m.Weights[in.Offset+k]
			}
			continue
		}
		if v != v || math.IsInf(v, 0) {
			v = in.Mean
		}
		z += m.Weights[in.Offset] * (v - in.Center) / in.Scale
	}
	return z
}

// Predict scores one raw row: a probability for logistic models, a value for ridge.
func (m *Model) Predict(row []float64) float64 {
	z := m.margin(row)
	if m.Kind == Logistic {
		return sigmoid(z)
	}
	return z
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// Validate checks a decoded model can score rows of numFeatures values safely.
func (m *Model) Validate(numFeatures int) error {
	if m.Kind != Logistic && m.Kind != Ridge {
		return fmt.Errorf("linear: kind %q", m.Kind)
	}
	if len(m.Inputs) != numFeatures {
		return fmt.Errorf("linear: %d inputs for %d features", len(m.Inputs), numFeatures)
	}
	if !finite(m.Intercept) {
		return errors.New("linear: intercept is not finite")
	}
	for i, w := range m.Weights {
		if !finite(w) {
			return fmt.Errorf("linear: weight %d is not finite", i)
		}
	}
	for j := range m.Inputs {
		in := &m.Inputs[j]
		if in.Offset < 0 || in.Offset+in.width() > len(m.Weights) {
			return fmt.Errorf("linear: input %d reads weights %d..%d of %d", j, in.Offset, in.Offset+in.width(), len(m.Weights))
		}
		if !in.Categorical && (!finite(in.Mean) || !finite(in.Center) || !(in.Scale > 0) || !finite(in.Scale)) {
			return fmt.Errorf("linear: input %d has an unusable mean, center or scale", j)
		}
		if !slices.IsSorted(in.Categories) {
			return fmt.Errorf("linear: input %d categories are not sorted", j)
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
