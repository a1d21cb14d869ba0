package drift

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Errors at the package boundary; wrapped with context, test with errors.Is.
var (
	// ErrNoValues: a sample or window has no non-missing values.
	ErrNoValues = errors.New("no non-missing values")
	// ErrNoSample: the method needs the reference's raw sample and the reference has none
	// (e.g. the prediction column, which profiles only as bins).
	ErrNoSample = errors.New("reference has no raw sample")
	// ErrKind: the method is not defined for the feature's kind (KS and Wasserstein on a
	// categorical feature).
	ErrKind = errors.New("method not defined for this feature kind")
	// ErrUnknownFeature: no reference by that name.
	ErrUnknownFeature = errors.New("unknown feature")
	// ErrMethod: not a Method.
	ErrMethod = errors.New("unknown drift method")
	// ErrTable: a chi-square table with a row or column of zeros, negative or non-finite
	// counts, or ragged rows.
	ErrTable = errors.New("invalid contingency table")
)

// Wasserstein returns the first Wasserstein distance between the empirical distributions of
// u and v, W₁ = ∫ |F_u(x) − F_v(x)| dx (scipy.stats.wasserstein_distance with unit weights).
// NaN values are left out; it is NaN when either sample has no values left.
func Wasserstein(u, v []float64) float64 {
	us, _ := sortedValues(u)
	vs, _ := sortedValues(v)
	return wassersteinSorted(us, vs)
}

// wassersteinSorted walks the pooled sorted values; between consecutive pooled values a < b
// both ECDFs are constant, contributing |F_u(a) − F_v(a)|·(b − a).
func wassersteinSorted(us, vs []float64) float64 {
	if len(us) == 0 || len(vs) == 0 {
		return math.NaN()
	}
	n1, n2 := float64(len(us)), float64(len(vs))
	var i, j int
	var sum, prev float64
	for k := 0; i < len(us) || j < len(vs); k++ {
		takeU := j == len(vs) || (i < len(us) && us[i] <= vs[j])
		x := vs[min(j, len(vs)-1)]
		if takeU {
			x = us[i]
		}
		if k > 0 && x > prev { // i and j count the values ≤ prev
			sum += math.Abs(float64(i)/n1-float64(j)/n2) * (x - prev)
		}
		if takeU {
			i++
		} else {
			j++
		}
		prev = x
	}
	return sum
}

// NormedWasserstein is Evidently's "wasserstein" drift score: W₁(ref, cur) divided by the
// population standard deviation (ddof 0) of ref, floored at 0.001.
func NormedWasserstein(ref, cur []float64) float64 {
	rs, _ := sortedValues(ref)
	cs, _ := sortedValues(cur)
	return wassersteinSorted(rs, cs) / math.Max(popStd(rs), 0.001)
}

// popStd is numpy's np.std(x): the root of the mean squared deviation from the mean.
func popStd(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	var mean float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return math.Sqrt(ss / float64(len(x)))
}

// shares returns x / Σx; NaN everywhere when the sum is not positive.
func shares(x []float64) []float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v / s
	}
	return out
}

func sameLen(p, q []float64) {
	if len(p) != len(q) {
		panic(fmt.Sprintf("drift: histograms of %d and %d bins", len(p), len(q)))
	}
}

// JensenShannon returns the Jensen–Shannon distance between two histograms (counts or
// shares), scipy.spatial.distance.jensenshannon: p and q are scaled to sum to 1,
// m = (p + q)/2 and the distance is √((KL(p‖m) + KL(q‖m))/2), with 0·log 0 = 0, so empty
// bins need no smoothing. Logarithms are natural when base ≤ 0 (Evidently's
// "jensenshannon", range [0, √ln 2 ≈ 0.8326]) and to the given base otherwise (base 2:
// range [0, 1], NannyML's). It panics when the lengths differ.
func JensenShannon(p, q []float64, base float64) float64 {
	sameLen(p, q)
	ps, qs := shares(p), shares(q)
	var left, right float64
	for i := range ps {
		m := (ps[i] + qs[i]) / 2
		left += relEntr(ps[i], m)
		right += relEntr(qs[i], m)
	}
	js := left + right
	if base > 0 {
		js /= math.Log(base)
	}
	return math.Sqrt(js / 2)
}

// relEntr is scipy.special.rel_entr: x·log(x/y), 0 at x = 0.
func relEntr(x, y float64) float64 {
	switch {
	case math.IsNaN(x) || math.IsNaN(y):
		return math.NaN()
	case x > 0 && y > 0:
		return x * math.Log(x/y)
	case x == 0 && y >= 0:
		return 0
	}
	return math.Inf(1)
}

// PSIEpsilon replaces an empty bin's share in PSI.
const PSIEpsilon = 1e-4

// PSI returns the population stability index Σ (aᵢ − eᵢ)·ln(aᵢ/eᵢ) between a reference
// histogram (expected shares e) and a current one (actual shares a); counts or shares, each
// scaled to sum to 1. Smoothing: a zero share, in either histogram, is replaced by
// PSIEpsilon = 10⁻⁴ without renormalising (Evidently's rule replaces it by 10⁻⁴ too unless
// some non-zero share is itself ≤ 10⁻⁴). PSI is symmetric in its arguments. It panics when
// the lengths differ.
func PSI(ref, cur []float64) float64 {
	sameLen(ref, cur)
	e, a := shares(ref), shares(cur)
	var s float64
	for i := range e {
		ei, ai := e[i], a[i]
		if ei == 0 {
			ei = PSIEpsilon
		}
		if ai == 0 {
			ai = PSIEpsilon
		}
		s += (ai - ei) * math.Log(ai/ei)
	}
	return s
}

// LInf returns the L∞ distance maxᵢ |pᵢ − qᵢ| between two histograms scaled to sum to 1: the
// largest change in any category's frequency. It panics when the lengths differ.
func LInf(p, q []float64) float64 {
	sameLen(p, q)
	ps, qs := shares(p), shares(q)
	var m float64
	for i := range ps {
		m = math.Max(m, math.Abs(ps[i]-qs[i]))
	}
	return m
}

// ChiSquareResult is a chi-square test.
type ChiSquareResult struct {
	Statistic float64
	P         float64 // chi-square survival function at Statistic with DoF degrees of freedom
	DoF       int
}

// ChiSquareSF is the chi-square survival function P(χ²_dof ≥ x) (scipy.stats.chi2.sf).
func ChiSquareSF(x float64, dof int) float64 {
	return distuv.ChiSquared{K: float64(dof)}.Survival(x)
}

// ChiSquareContingency is Pearson's test of independence on an r×k table of counts,
// scipy.stats.chi2_contingency: expected = row sum × column sum / total, statistic
// Σ (observed − expected)²/expected, dof = (r − 1)(k − 1). With correction, Yates' continuity
// correction is applied when dof = 1 (and only then, as scipy does): each observed count
// moves towards its expected count by min(0.5, |observed − expected|). A table with dof 0
// has statistic 0 and p 1. Like scipy it refuses (ErrTable) a table with an all-zero row
// or column, since some expected count would be zero.
func ChiSquareContingency(table [][]float64, correction bool) (ChiSquareResult, error) {
	r := len(table)
	if r == 0 || len(table[0]) == 0 {
		return ChiSquareResult{}, fmt.Errorf("drift: empty table: %w", ErrTable)
	}
	k := len(table[0])
	rows := make([]float64, r)
	cols := make([]float64, k)
	var total float64
	for i, row := range table {
		if len(row) != k {
			return ChiSquareResult{}, fmt.Errorf("drift: row %d has %d columns, row 0 %d: %w", i, len(row), k, ErrTable)
		}
		for j, v := range row {
			if !(v >= 0) || math.IsInf(v, 1) {
				return ChiSquareResult{}, fmt.Errorf("drift: count %v at (%d, %d): %w", v, i, j, ErrTable)
			}
			rows[i] += v
			cols[j] += v
			total += v
		}
	}
	for i, s := range rows {
		if s == 0 {
			return ChiSquareResult{}, fmt.Errorf("drift: row %d is all zeros: %w", i, ErrTable)
		}
	}
	for j, s := range cols {
		if s == 0 {
			return ChiSquareResult{}, fmt.Errorf("drift: column %d is all zeros: %w", j, ErrTable)
		}
	}
	dof := (r - 1) * (k - 1)
	if dof == 0 {
		return ChiSquareResult{Statistic: 0, P: 1, DoF: 0}, nil
	}
	var stat float64
	for i, row := range table {
		for j, o := range row {
			e := rows[i] * cols[j] / total
			if correction && dof == 1 {
				diff := e - o
				if diff != 0 {
					o += math.Copysign(math.Min(0.5, math.Abs(diff)), diff)
				}
			}
			stat += (o - e) * (o - e) / e
		}
	}
	return ChiSquareResult{Statistic: stat, P: ChiSquareSF(stat, dof), DoF: dof}, nil
}

// ChiSquareGoodnessOfFit is Evidently's "chisquare" drift test: scipy.stats.chisquare of the
// current counts against the reference counts rescaled to the current total,
// f_exp = ref · Σcur / Σref, statistic Σ (cur − f_exp)²/f_exp, dof = k − 1. Categories empty
// in both are left out (Evidently only lists values seen in either); a category seen only in
// the current window gives an infinite statistic and p = 0.
func ChiSquareGoodnessOfFit(ref, cur []float64) (ChiSquareResult, error) {
	sameLen(ref, cur)
	var sr, sc float64
	for i := range ref {
		if !(ref[i] >= 0) || !(cur[i] >= 0) || math.IsInf(ref[i], 1) || math.IsInf(cur[i], 1) {
			return ChiSquareResult{}, fmt.Errorf("drift: counts %v, %v at %d: %w", ref[i], cur[i], i, ErrTable)
		}
		sr += ref[i]
		sc += cur[i]
	}
	if sr == 0 || sc == 0 {
		return ChiSquareResult{}, fmt.Errorf("drift: goodness of fit with totals %v and %v: %w", sr, sc, ErrTable)
	}
	var stat float64
	k := 0
	for i := range ref {
		if ref[i] == 0 && cur[i] == 0 {
			continue
		}
		k++
		e := ref[i] * sc / sr
		if e == 0 {
			stat = math.Inf(1)
			continue
		}
		stat += (cur[i] - e) * (cur[i] - e) / e
	}
	if k <= 1 {
		return ChiSquareResult{Statistic: 0, P: 1, DoF: 0}, nil
	}
	return ChiSquareResult{Statistic: stat, P: ChiSquareSF(stat, k-1), DoF: k - 1}, nil
}
