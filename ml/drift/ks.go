package drift

import (
	"fmt"
	"math"
	"slices"
)

// KSMethod chooses how KSTwoSample computes its p-value, as scipy.stats.ks_2samp's method.
type KSMethod uint8

const (
	// KSAuto is KSExact when max(n₁, n₂) ≤ 10,000 and KSAsymp otherwise (scipy's "auto").
	KSAuto KSMethod = iota
	// KSExact is the exact null distribution of D for samples of sizes n₁, n₂ of a continuous
	// distribution. When lcm(n₁, n₂) does not fit in 31 bits it falls back to KSAsymp.
	KSExact
	// KSAsymp is kstwo.sf(D, round(n₁n₂/(n₁+n₂))): the exact one-sample distribution at the
	// effective size, which is what scipy's "asymp" computes (not the Kolmogorov limit).
	KSAsymp
)

func (m KSMethod) String() string {
	switch m {
	case KSAuto:
		return "auto"
	case KSExact:
		return "exact"
	case KSAsymp:
		return "asymp"
	}
	return fmt.Sprintf("KSMethod(%d)", uint8(m))
}

// ksMaxAutoN is scipy's MAX_AUTO_N: "auto" is exact up to this sample size.
const ksMaxAutoN = 10000

// KSResult is a two-sample Kolmogorov–Smirnov test.
type KSResult struct {
	D      float64  // max |F₁(x) − F₂(x)| over the pooled values
	P      float64  // two-sided p-value
	Method KSMethod // KSExact or KSAsymp: how P was computed
	N1, N2 int      // non-missing values in each sample
	// Missing1 and Missing2 count the NaN values left out.
	Missing1, Missing2 int
}

// KSTwoSample is the two-sided two-sample Kolmogorov–Smirnov test, scipy.stats.ks_2samp
// (scipy 1.10) to rounding. D is the largest distance between the two right-continuous
// empirical CDFs over all pooled values, so tied values are handled as scipy handles them;
// it is computed in integers and reported as the correctly rounded h/lcm(n₁, n₂), the form
// scipy's exact method reports. NaN values are left out and counted; it returns ErrNoValues
// when either sample has none left.
func KSTwoSample(x, y []float64, method KSMethod) (KSResult, error) {
	xs, mx := sortedValues(x)
	ys, my := sortedValues(y)
	if len(xs) == 0 || len(ys) == 0 {
		return KSResult{}, fmt.Errorf("drift: ks_2samp of %d and %d values: %w", len(xs), len(ys), ErrNoValues)
	}
	r := ksSorted(xs, ys, method)
	r.Missing1, r.Missing2 = mx, my
	return r, nil
}

// sortedValues returns the non-NaN values of x sorted, and how many were NaN.
func sortedValues(x []float64) ([]float64, int) {
	out := make([]float64, 0, len(x))
	for _, v := range x {
		if !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out, len(x) - len(out)
}

// ksSorted tests two sorted, NaN-free, non-empty samples.
func ksSorted(xs, ys []float64, method KSMethod) KSResult {
	n1, n2 := len(xs), len(ys)
	h, g := ksNumerator(xs, ys)
	lcm := int64(n1/g) * int64(n2)
	r := KSResult{D: float64(h) / float64(lcm), N1: n1, N2: n2}
	switch {
	case method == KSAuto && max(n1, n2) <= ksMaxAutoN:
		method = KSExact
	case method == KSAuto:
		method = KSAsymp
	case method == KSExact && int64(n1/g) >= math.MaxInt32/int64(n2/g):
		method = KSAsymp
	}
	r.Method = method
	if method == KSExact {
		r.P = ksExactSF(n1, n2, g, h)
	} else {
		r.P = ksAsympSF(n1, n2, r.D)
	}
	return r
}

// ksNumerator returns h and g = gcd(n₁, n₂) with D = h / lcm(n₁, n₂): after each distinct
// pooled value v the ECDF difference is |i/n₁ − j/n₂| = |i·n₂ − j·n₁| / (n₁n₂), i and j
// counting the values ≤ v.
func ksNumerator(xs, ys []float64) (h int64, g int) {
	n1, n2 := int64(len(xs)), int64(len(ys))
	var i, j int
	var best int64
	for i < len(xs) || j < len(ys) {
		var v float64
		switch {
		case i == len(xs):
			v = ys[j]
		case j == len(ys):
			v = xs[i]
		default:
			v = min(xs[i], ys[j])
		}
		for i < len(xs) && xs[i] == v {
			i++
		}
		for j < len(ys) && ys[j] == v {
			j++
		}
		diff := int64(i)*n2 - int64(j)*n1
		if diff < 0 {
			diff = -diff
		}
		best = max(best, diff)
	}
	g = gcd(len(xs), len(ys))
	return best / int64(g), g
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ksAsympSF is scipy's "asymp" p-value: kstwo.sf(D, round(en)), en = n₁n₂/(n₁+n₂) rounded
// half to even (at least 1).
func ksAsympSF(n1, n2 int, d float64) float64 {
	m, n := float64(max(n1, n2)), float64(min(n1, n2))
	en := m * n / (m + n)
	return kstwoSF(max(1, int(math.RoundToEven(en))), d)
}

// ksExactSF returns P(D ≥ h/lcm) under the null for samples of sizes n₁ and n₂ (g their
// gcd): the share of the C(n₁+n₂, n₁) equally likely interleavings of the two samples,
// i.e. monotone lattice paths from (0, 0) to (n₁, n₂), that touch |i/n₁ − j/n₂| ≥ h/lcm.
func ksExactSF(n1, n2, g int, h int64) float64 {
	if h == 0 {
		return 1
	}
	if n1 == n2 {
		return ksExactSquare(n1, int(h))
	}
	return ksExactLattice(n1, n2, g, h)
}

// ksExactSquare is the equal-size case by the reflection formula
// P(D ≥ h/n) = 2 Σ_{k≥1} (−1)^{k+1} C(2n, n−kh) / C(2n, n), evaluated as scipy does,
// Horner-like in the ratios of consecutive terms to avoid cancellation.
func ksExactSquare(n, h int) float64 {
	p := 0.0
	for k := n / h; k >= 0; k-- {
		a := 1.0
		for j := range h {
			a = float64(n-k*h-j) * a / float64(n+k*h+j+1)
		}
		p = a * (1 - p)
	}
	return clip01(2 * p)
}

// ksExactLattice counts the paths that leave the band with probabilities rather than
// numbers of paths (Viehmann 2021, arXiv:2102.08037, the form scipy uses), so nothing
// overflows: Q(i, j), the probability that a uniformly random path from (0, 0) to (i, j)
// has touched the boundary, is 1 outside the band |i·n₂/g − j·n₁/g| < h and
// (i·Q(i−1, j) + j·Q(i, j−1)) / (i + j) inside it (the last step of a random path to (i, j)
// comes from the left with probability i/(i+j)). The p-value is Q(n₁, n₂). Only the band is
// computed, one column at a time, in place.
func ksExactLattice(n1, n2, g int, h int64) float64 {
	m, n := max(n1, n2), min(n1, n2) // i runs over the larger sample
	mg, ng := int64(m/g), int64(n/g)
	// Inside the band in column i: (i·ng − h)/mg < j < (i·ng + h)/mg.
	band := func(i int) (lo, hi int) {
		a := int64(i)*ng - h
		b := int64(i)*ng + h
		lo64 := floorDiv(a, mg) + 1
		hi64 := -floorDiv(-b, mg) - 1 // ⌈b/mg⌉ − 1
		return int(max(lo64, 0)), int(min(hi64, int64(n)))
	}
	q := make([]float64, n+1)
	for j := range q {
		q[j] = 1
	}
	lo, hi := band(0)
	for j := lo; j <= hi; j++ {
		q[j] = 0 // the straight path up stays inside
	}
	for i := 1; i <= m; i++ {
		plo := lo
		lo, hi = band(i)
		if lo > hi {
			return 1
		}
		for j := plo; j < lo; j++ {
			q[j] = 1 // fell out below the band
		}
		fi := float64(i)
		for j := max(lo, 1); j <= hi; j++ { // Q(i, 0) = Q(i−1, 0)
			fj := float64(j)
			// The reciprocal keeps the division off the chain through q[j-1] (4× faster;
			// one more rounding per step).
			inv := 1 / (fi + fj)
			q[j] = (q[j]*fi + q[j-1]*fj) * inv
		}
	}
	return clip01(q[n])
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
