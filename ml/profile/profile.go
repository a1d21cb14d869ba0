// Package profile builds a model's reference profile: what its training data and predictions
// looked like, in the form the monitor compares production with — per-feature quantile bins
// with counts, summary statistics, categorical frequencies, missing rates, the prediction
// distribution, and a bounded uniform sample of raw rows so thresholds can be calibrated by
// resampling.
//
// Bin convention (the monitor bins production values the same way, with Bin): for edges
// e₀ < e₁ < … < eₖ₋₁, bin 0 holds v ≤ e₀, bin i holds eᵢ₋₁ < v ≤ eᵢ, and bin k holds v > eₖ₋₁;
// missing values are counted apart. Edges are the reference's quantiles at 1/B, 2/B, …,
// (B−1)/B (duplicates removed), so each bin holds about 1/B of the reference.
package profile

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/flywheel-ml/flywheel/ml/dataset"
)

// Options size a profile.
type Options struct {
	Bins       int    // quantile bins per numeric feature; default 10
	SampleSize int    // raw rows kept; default 5000
	Seed       uint64 // seeds the sample
}

// Numeric summarises a numeric column.
type Numeric struct {
	Edges  []float64 `json:"edges"`
	Counts []int     `json:"counts"` // len(Edges)+1
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Mean   float64   `json:"mean"`
	Std    float64   `json:"std"`
}

// Feature is one feature's reference.
type Feature struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"` // numeric or categorical
	Rows    int      `json:"rows"`
	Missing float64  `json:"missing_rate"`
	Numeric *Numeric `json:"numeric,omitempty"`
	// Categories: code → share of the non-missing rows (codes as decimal strings).
	Categories map[string]float64 `json:"categories,omitempty"`
}

// Sample is a uniform random sample of the reference rows.
type Sample struct {
	Rows   [][]float64 `json:"rows"` // feature values in signature order; NaN is written as null
	Labels []float64   `json:"labels,omitempty"`
}

// Profile is a model's reference.
type Profile struct {
	Rows        int       `json:"rows"`
	Features    []Feature `json:"features"`
	Predictions Feature   `json:"predictions"`
	Sample      Sample    `json:"sample"`
}

// Build profiles the reference frame f and the model's predictions on it.
func Build(f *dataset.Frame, predictions []float64, opt Options) (*Profile, error) {
	if opt.Bins <= 1 {
		opt.Bins = 10
	}
	if opt.SampleSize <= 0 {
		opt.SampleSize = 5000
	}
	n := f.Rows()
	if n == 0 {
		return nil, dataset.ErrNoRows
	}
	if len(predictions) != n {
		return nil, fmt.Errorf("profile: %d predictions for %d rows", len(predictions), n)
	}
	p := &Profile{Rows: n}
	for j, col := range f.Cols {
		if f.Kinds[j] == dataset.Categorical {
			p.Features = append(p.Features, categorical(f.Names[j], col))
		} else {
			p.Features = append(p.Features, numeric(f.Names[j], col, opt.Bins))
		}
	}
	p.Predictions = numeric("prediction", predictions, opt.Bins)
	p.Sample = sample(f, opt)
	return p, nil
}

// PredictionReference is the prediction entry of a profile from predictions on rows the
// model did not learn from (its holdout). A flexible model's in-sample scores are more
// extreme than any it gives in production, so a reference built from them makes prediction
// drift fire on stationary traffic; Build's in-sample entry is for models without a holdout.
func PredictionReference(predictions []float64, opt Options) Feature {
	if opt.Bins <= 1 {
		opt.Bins = 10
	}
	return numeric("prediction", predictions, opt.Bins)
}

func numeric(name string, col []float64, bins int) Feature {
	vals := make([]float64, 0, len(col))
	for _, v := range col {
		if !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	ft := Feature{Name: name, Kind: "numeric", Rows: len(col), Missing: float64(len(col)-len(vals)) / float64(len(col))}
	if len(vals) == 0 {
		return ft
	}
	sort.Float64s(vals)
	num := &Numeric{Min: vals[0], Max: vals[len(vals)-1]}
	for _, v := range vals {
		num.Mean += v
	}
	num.Mean /= float64(len(vals))
	for _, v := range vals {
		num.Std += (v - num.Mean) * (v - num.Mean)
	}
	num.Std = math.Sqrt(num.Std / float64(len(vals)))
	for i := 1; i < bins; i++ {
		q := vals[min(len(vals)-1, int(math.Ceil(float64(i)*float64(len(vals))/float64(bins)))-1)]
		if len(num.Edges) == 0 || q > num.Edges[len(num.Edges)-1] {
			num.Edges = append(num.Edges, q)
		}
	}
	num.Counts = make([]int, len(num.Edges)+1)
	for _, v := range vals {
		num.Counts[binOf(num.Edges, v)]++
	}
	ft.Numeric = num
	return ft
}

func binOf(edges []float64, v float64) int { return sort.SearchFloat64s(edges, v) }

func categorical(name string, col []float64) Feature {
	counts := map[string]int{}
	seen := 0
	for _, v := range col {
		if !math.IsNaN(v) {
			counts[fmt.Sprint(int64(v))]++
			seen++
		}
	}
	ft := Feature{Name: name, Kind: "categorical", Rows: len(col), Missing: float64(len(col)-seen) / float64(len(col)), Categories: map[string]float64{}}
	for k, c := range counts {
		ft.Categories[k] = float64(c) / float64(seen)
	}
	return ft
}

// sample keeps a uniform random sample of rows (reservoir sampling, seeded).
func sample(f *dataset.Frame, opt Options) Sample {
	n := f.Rows()
	k := min(opt.SampleSize, n)
	rng := rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))
	pick := make([]int, k)
	for i := range n {
		if i < k {
			pick[i] = i
		} else if j := rng.IntN(i + 1); j < k {
			pick[j] = i
		}
	}
	slices.Sort(pick)
	s := Sample{Rows: make([][]float64, k)}
	for r, i := range pick {
		s.Rows[r] = f.Row(i, nil)
	}
	if f.Label != nil {
		s.Labels = make([]float64, k)
		for r, i := range pick {
			s.Labels[r] = f.Label[i]
		}
	}
	return s
}

// Bin returns the bin of value v for the named numeric feature ("prediction" for the
// predictions), or -1 when v is missing.
func (p *Profile) Bin(feature string, v float64) (int, error) {
	ft := &p.Predictions
	if feature != "prediction" {
		i := slices.IndexFunc(p.Features, func(f Feature) bool { return f.Name == feature })
		if i < 0 {
			return 0, fmt.Errorf("profile has no feature %q", feature)
		}
		ft = &p.Features[i]
	}
	if ft.Numeric == nil {
		return 0, errors.New("feature " + feature + " has no numeric bins")
	}
	if math.IsNaN(v) {
		return -1, nil
	}
	return binOf(ft.Numeric.Edges, v), nil
}
