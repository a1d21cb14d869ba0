package main

import (
	"math"
	"math/rand/v2"

	"github.com/flywheel-ml/flywheel/ml/dataset"
)

// feature is one column of the synthetic stream: how a value is drawn when nothing drifts.
type feature struct {
	name    string
	kind    dataset.Kind
	missing float64 // share of missing values (NaN)
	// mean and sd are the population's, for the numeric shifts (set for the normal features).
	mean, sd float64
	draw     func(r *rand.Rand) float64 // numeric
	probs    []float64                  // categorical: share of codes 0, 1, …
}

func normal(mu, sd float64) func(*rand.Rand) float64 {
	return func(r *rand.Rand) float64 { return mu + sd*r.NormFloat64() }
}

func lognormal(mu, sd float64) func(*rand.Rand) float64 {
	return func(r *rand.Rand) float64 { return math.Exp(mu + sd*r.NormFloat64()) }
}

func mixture(w, mu1, sd1, mu2, sd2 float64) func(*rand.Rand) float64 {
	return func(r *rand.Rand) float64 {
		if r.Float64() < w {
			return mu1 + sd1*r.NormFloat64()
		}
		return mu2 + sd2*r.NormFloat64()
	}
}

// studentT3 is Student's t with 3 degrees of freedom (finite variance 3, heavy tails).
func studentT3(r *rand.Rand) float64 {
	a, b, c := r.NormFloat64(), r.NormFloat64(), r.NormFloat64()
	return r.NormFloat64() / math.Sqrt((a*a+b*b+c*c)/3)
}

func cauchy(r *rand.Rand) float64 { return math.Tan(math.Pi * (r.Float64() - 0.5)) }

// poisson3 is Poisson(3) by inversion (integer values: many ties).
func poisson3(r *rand.Rand) float64 {
	u := r.Float64()
	k, p := 0, math.Exp(-3)
	for c := p; u > c && k < 100; c += p {
		k++
		p *= 3 / float64(k)
	}
	return float64(k)
}

// zeroInflated is 0 with probability 0.7, else lognormal(2, 1), like an amount that is
// usually absent.
func zeroInflated(r *rand.Rand) float64 {
	if r.Float64() < 0.7 {
		return 0
	}
	return math.Exp(2 + r.NormFloat64())
}

// pareto is Pareto with shape 2.5 and scale 1.
func pareto(r *rand.Rand) float64 { return math.Pow(1-r.Float64(), -1/2.5) }

func zipf(k int, s float64) []float64 {
	p := make([]float64, k)
	var sum float64
	for i := range p {
		p[i] = 1 / math.Pow(float64(i+1), s)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// schema is the 20 features: 16 numeric of varied shapes (4 with missing values) and 4
// categorical.
func schema() []feature {
	num := func(name string, missing float64, draw func(*rand.Rand) float64) feature {
		return feature{name: name, kind: dataset.Numeric, missing: missing, draw: draw}
	}
	cat := func(name string, missing float64, probs ...float64) feature {
		return feature{name: name, kind: dataset.Categorical, missing: missing, probs: probs}
	}
	return []feature{
		{name: "normal", kind: dataset.Numeric, mean: 0, sd: 1, draw: normal(0, 1)},
		{name: "normal_wide", kind: dataset.Numeric, mean: 50, sd: 10, draw: normal(50, 10)},
		num("normal_narrow", 0, normal(-3, 0.2)),
		num("normal_missing10", 0.10, normal(5, 2)),
		num("lognormal", 0, lognormal(0, 0.5)),
		num("lognormal_heavy", 0, lognormal(3, 1.2)),
		num("lognormal_missing30", 0.30, lognormal(1, 0.8)),
		num("bimodal", 0, mixture(0.5, -2, 1, 2, 1)),
		num("bimodal_skewed_missing5", 0.05, mixture(0.3, 0, 1, 6, 0.5)),
		num("student_t3", 0, studentT3),
		num("cauchy", 0, cauchy),
		num("exponential", 0, func(r *rand.Rand) float64 { return r.ExpFloat64() }),
		num("uniform", 0, func(r *rand.Rand) float64 { return r.Float64() }),
		num("poisson3", 0, poisson3),
		num("zero_inflated", 0, zeroInflated),
		num("pareto_missing2", 0.02, pareto),
		cat("cat_top", 0, 0.5, 0.2, 0.15, 0.1, 0.05),
		cat("cat_uniform3", 0, 1.0/3, 1.0/3, 1.0/3),
		cat("cat_zipf20", 0, zipf(20, 1.1)...),
		cat("cat_binary_missing5", 0.05, 0.9, 0.1),
	}
}

// condition is what a window's stream looks like: stationary, or one feature changed.
type condition struct {
	Name    string `json:"name"`
	Feature string `json:"feature,omitempty"`
	Change  string `json:"change,omitempty"`
	index   int    // the changed feature, -1 for none
	numeric func(v float64) float64
	probs   []float64
}

// conditions are the stationary stream and the three changes of the issue: a 0.25σ mean
// shift of "normal", its standard deviation times 1.3 on "normal_wide" (σ 10 → 13), and the
// top category of "cat_top" from 0.5 to 0.42, the other categories scaled up in proportion.
func conditions(fs []feature) []condition {
	idx := func(name string) int {
		for i, f := range fs {
			if f.name == name {
				return i
			}
		}
		panic("no feature " + name)
	}
	mean, wide, top := idx("normal"), idx("normal_wide"), idx("cat_top")
	shifted := make([]float64, len(fs[top].probs))
	rest := 1 - fs[top].probs[0]
	shifted[0] = 0.42
	for i := 1; i < len(shifted); i++ {
		shifted[i] = fs[top].probs[i] * (1 - 0.42) / rest
	}
	m, s := fs[mean], fs[wide]
	return []condition{
		{Name: "stationary", index: -1},
		{Name: "mean +0.25σ", Feature: m.name, Change: "N(0, 1) → N(0.25, 1)", index: mean,
			numeric: func(v float64) float64 { return v + 0.25*m.sd }},
		{Name: "σ ×1.3", Feature: s.name, Change: "N(50, 10) → N(50, 13)", index: wide,
			numeric: func(v float64) float64 { return s.mean + 1.3*(v-s.mean) }},
		{Name: "category 0.5 → 0.42", Feature: fs[top].name, Change: "top category's share 0.50 → 0.42, the others ×1.16", index: top,
			probs: shifted},
	}
}

// stream draws windows.
type stream struct {
	fs []feature
}

// window fills rows (n × len(fs), row-major, NaN missing, categorical values as codes) and
// the model's scores under condition c.
func (s *stream) window(r *rand.Rand, c *condition, flat []float64, rows [][]float64, preds []float64) {
	k := len(s.fs)
	for i := range rows {
		row := flat[i*k : (i+1)*k : (i+1)*k]
		for j := range s.fs {
			f := &s.fs[j]
			if f.missing > 0 && r.Float64() < f.missing {
				row[j] = math.NaN()
				continue
			}
			if f.kind == dataset.Categorical {
				p := f.probs
				if j == c.index && c.probs != nil {
					p = c.probs
				}
				row[j] = categorical(r, p)
				continue
			}
			v := f.draw(r)
			if j == c.index && c.numeric != nil {
				v = c.numeric(v)
			}
			row[j] = v
		}
		rows[i] = row
		preds[i] = score(row)
	}
}

func categorical(r *rand.Rand, p []float64) float64 {
	u := r.Float64()
	for i, pi := range p {
		if u < pi {
			return float64(i)
		}
		u -= pi
	}
	return float64(len(p) - 1)
}

// score is the model whose predictions the profile and the monitor see: a logistic score of
// a few features (a missing value contributes nothing).
func score(row []float64) float64 {
	z := -1.0
	add := func(j int, w, center float64) {
		if v := row[j]; !math.IsNaN(v) {
			z += w * (v - center)
		}
	}
	add(0, 0.8, 0)   // normal
	add(1, 0.04, 50) // normal_wide
	add(3, 0.2, 5)   // normal_missing10
	add(7, 0.3, 0)   // bimodal
	add(13, 0.15, 3) // poisson3
	add(16, 0.25, 1) // cat_top code
	return 1 / (1 + math.Exp(-z))
}
