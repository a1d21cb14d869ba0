package drift

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/flywheel-ml/flywheel/ml/profile"
)

// Feature kinds, as profile.Feature.Kind spells them.
const (
	Numeric     = "numeric"
	Categorical = "categorical"
)

// Method names a drift statistic; the strings are the ones stored with drift metrics and
// events.
type Method string

const (
	// MethodKS: two-sample Kolmogorov–Smirnov D between the window and the reference's raw
	// sample (numeric features).
	MethodKS Method = "ks"
	// MethodWasserstein: W₁ between the window and the reference's raw sample divided by the
	// sample's standard deviation (Evidently's normed Wasserstein; numeric features).
	MethodWasserstein Method = "wasserstein"
	// MethodPSI: PSI between the reference's bins and the window binned the same way.
	MethodPSI Method = "psi"
	// MethodJensenShannon: Jensen–Shannon distance (natural log, as Evidently) between the
	// reference's bins and the window's.
	MethodJensenShannon Method = "jensenshannon"
	// MethodChiSquare: chi2_contingency statistic of the 2×k table [reference bin counts;
	// window bin counts], bins empty in both left out, Yates' correction when dof = 1.
	MethodChiSquare Method = "chisquare"
	// MethodLInf: the largest change in any bin's (category's) share.
	MethodLInf Method = "linf"
)

// Methods lists every method.
var Methods = []Method{MethodKS, MethodWasserstein, MethodPSI, MethodJensenShannon, MethodChiSquare, MethodLInf}

// ParseMethod returns the method named s, or an error wrapping ErrMethod.
func ParseMethod(s string) (Method, error) {
	if slices.Contains(Methods, Method(s)) {
		return Method(s), nil
	}
	return "", fmt.Errorf("drift: %q (want one of %v): %w", s, Methods, ErrMethod)
}

// usesSample reports whether m compares raw values (numeric features with a sample only).
func (m Method) usesSample() bool { return m == MethodKS || m == MethodWasserstein }

// Reference is one feature's reference, prepared for scoring windows against it and for
// calibrating thresholds: the profile's bins (numeric quantile edges with counts, or
// categorical frequencies) and, for numeric features, the non-missing values of the
// profile's raw sample. It is immutable and safe for concurrent use.
//
// Bins follow profile's convention (profile.Profile.Bin): for edges e₀ < … < eₖ₋₁, bin 0
// holds v ≤ e₀, bin i holds eᵢ₋₁ < v ≤ eᵢ and bin k holds v > eₖ₋₁. A categorical
// feature has one bin per reference category (codes ascending) and a last bin, empty in the
// reference, for codes the reference never saw. A value's code is int64(v), as profile
// counts them. Missing values (NaN) are left out of every statistic and counted.
type Reference struct {
	name, kind string

	sample        []float64 // sorted non-missing raw sample values (numeric only)
	sampleMissing int

	edges     []float64     // numeric bins
	codes     []int64       // categorical bins, ascending
	index     map[int64]int // code → bin
	refCounts []float64     // reference count per bin
	refRows   float64       // Σ refCounts: the reference's non-missing rows
}

// NewReference prepares the reference of one profiled feature. sample holds the feature's
// raw values from the profile's sample (NaN for missing; nil when there is none, as for the
// predictions): KS and Wasserstein need it, the binned methods do not.
func NewReference(ft profile.Feature, sample []float64) (*Reference, error) {
	r := &Reference{name: ft.Name, kind: ft.Kind}
	switch ft.Kind {
	case Numeric:
		if ft.Numeric != nil {
			r.edges = slices.Clone(ft.Numeric.Edges)
			if len(ft.Numeric.Counts) != len(r.edges)+1 {
				return nil, fmt.Errorf("drift: feature %q: %d counts for %d edges", ft.Name, len(ft.Numeric.Counts), len(r.edges))
			}
			for i := 1; i < len(r.edges); i++ {
				if !(r.edges[i] > r.edges[i-1]) {
					return nil, fmt.Errorf("drift: feature %q: edges not strictly ascending at %d", ft.Name, i)
				}
			}
			r.refCounts = make([]float64, len(ft.Numeric.Counts))
			for i, c := range ft.Numeric.Counts {
				r.refCounts[i] = float64(c)
				r.refRows += float64(c)
			}
		}
		r.sample, r.sampleMissing = sortedValues(sample)
	case Categorical:
		nonMissing := math.Round(float64(ft.Rows) * (1 - ft.Missing))
		r.index = map[int64]int{}
		for k := range ft.Categories {
			c, err := strconv.ParseInt(k, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("drift: feature %q: category %q is not an integer code", ft.Name, k)
			}
			r.codes = append(r.codes, c)
		}
		slices.Sort(r.codes)
		r.refCounts = make([]float64, len(r.codes)+1)
		for i, c := range r.codes {
			r.index[c] = i
			r.refCounts[i] = math.Round(ft.Categories[strconv.FormatInt(c, 10)] * nonMissing)
			r.refRows += r.refCounts[i]
		}
	default:
		return nil, fmt.Errorf("drift: feature %q has kind %q", ft.Name, ft.Kind)
	}
	return r, nil
}

// References prepares every feature of a profile, with its column of the raw sample, and the
// predictions when profiled (named "prediction", bins only: the sample holds no predictions).
func References(p *profile.Profile) ([]*Reference, error) {
	out := make([]*Reference, 0, len(p.Features)+1)
	for j, ft := range p.Features {
		col := make([]float64, 0, len(p.Sample.Rows))
		for i, row := range p.Sample.Rows {
			if len(row) != len(p.Features) {
				return nil, fmt.Errorf("drift: sample row %d has %d values for %d features", i, len(row), len(p.Features))
			}
			col = append(col, row[j])
		}
		r, err := NewReference(ft, col)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	pred := p.Predictions
	if pred.Kind == "" { // a profile without predictions
		return out, nil
	}
	if pred.Name == "" {
		pred.Name = "prediction"
	}
	r, err := NewReference(pred, nil)
	if err != nil {
		return nil, err
	}
	return append(out, r), nil
}

// Name is the feature's name.
func (r *Reference) Name() string { return r.name }

// Kind is Numeric or Categorical.
func (r *Reference) Kind() string { return r.kind }

// SampleSize is the number of non-missing raw sample values.
func (r *Reference) SampleSize() int { return len(r.sample) }

// Supports reports whether m can score this reference: nil, or an error wrapping ErrKind
// (KS, Wasserstein on a categorical feature), ErrNoSample (KS, Wasserstein without raw
// sample values), ErrNoValues (binned methods when the reference had no non-missing value)
// or ErrMethod.
func (r *Reference) Supports(m Method) error {
	if _, err := ParseMethod(string(m)); err != nil {
		return err
	}
	switch {
	case m.usesSample() && r.kind != Numeric:
		return fmt.Errorf("drift: %s on categorical feature %q: %w", m, r.name, ErrKind)
	case m.usesSample() && len(r.sample) == 0:
		return fmt.Errorf("drift: %s on feature %q: %w", m, r.name, ErrNoSample)
	case !m.usesSample() && r.refRows == 0:
		return fmt.Errorf("drift: %s on feature %q, whose reference bins are empty: %w", m, r.name, ErrNoValues)
	}
	return nil
}

// Bins returns the reference's count per bin (a copy).
func (r *Reference) Bins() []float64 { return slices.Clone(r.refCounts) }

// Histogram bins a window like the reference: the count per bin, and the number of missing
// values left out.
func (r *Reference) Histogram(window []float64) (counts []float64, missing int) {
	counts = make([]float64, len(r.refCounts))
	if len(counts) == 0 {
		return counts, countNaN(window)
	}
	for _, v := range window {
		if math.IsNaN(v) {
			missing++
			continue
		}
		counts[r.bin(v)]++
	}
	return counts, missing
}

// bin is the bin of a non-missing value.
func (r *Reference) bin(v float64) int {
	if r.kind == Categorical {
		if i, ok := r.index[int64(v)]; ok {
			return i
		}
		return len(r.codes)
	}
	// profile's rule: the first edge ≥ v (profile.Profile.Bin uses the same search).
	return sort.SearchFloat64s(r.edges, v)
}

func countNaN(x []float64) int {
	n := 0
	for _, v := range x {
		if math.IsNaN(v) {
			n++
		}
	}
	return n
}

// Score is one statistic of a window against a reference.
type Score struct {
	Method    Method
	Statistic float64
	// P is the textbook p-value where the method has one, NaN otherwise: KS as
	// ks_2samp(window, sample, method="auto"), chi-square as chi2_contingency. These assume
	// both samples random and continuous (KS) or large (chi-square); the calibrated p-value
	// of a Null is the one to act on.
	P       float64
	N       int // non-missing window values
	Missing int // NaN window values, left out
}

// Score computes method m of a window against the reference. It returns ErrNoValues when the
// window has no non-missing value, and whatever Supports returns. KS's exact p-value costs
// O(max(n, m)·D·min(n, m)) steps, about 1.5 ms for 500 values against 5,000; Statistic
// skips it.
func (r *Reference) Score(m Method, window []float64) (Score, error) {
	return r.score(m, window, true)
}

// Statistic is Score without the analytic p-value (P is NaN).
func (r *Reference) Statistic(m Method, window []float64) (Score, error) {
	return r.score(m, window, false)
}

func (r *Reference) score(m Method, window []float64, withP bool) (Score, error) {
	if err := r.Supports(m); err != nil {
		return Score{}, err
	}
	s := Score{Method: m, P: math.NaN()}
	if m.usesSample() {
		w, missing := sortedValues(window)
		s.N, s.Missing = len(w), missing
		if len(w) == 0 {
			return s, fmt.Errorf("drift: %s on feature %q: window %w", m, r.name, ErrNoValues)
		}
		if m == MethodKS && withP {
			k := ksSorted(w, r.sample, KSAuto)
			s.Statistic, s.P = k.D, k.P
		} else if m == MethodKS {
			h, g := ksNumerator(w, r.sample)
			s.Statistic = float64(h) / float64(int64(len(w)/g)*int64(len(r.sample)))
		} else {
			s.Statistic = wassersteinSorted(r.sample, w) / math.Max(popStd(r.sample), 0.001)
		}
		return s, nil
	}
	counts, missing := r.Histogram(window)
	s.Missing = missing
	s.N = len(window) - missing
	if s.N == 0 {
		return s, fmt.Errorf("drift: %s on feature %q: window %w", m, r.name, ErrNoValues)
	}
	s.Statistic, s.P = binnedStat(m, r.refCounts, counts)
	if !withP {
		s.P = math.NaN()
	}
	return s, nil
}

// binnedStat computes a binned method from reference and window counts, and the chi-square
// p-value (NaN for the others).
func binnedStat(m Method, ref, cur []float64) (stat, p float64) {
	switch m {
	case MethodPSI:
		return PSI(ref, cur), math.NaN()
	case MethodJensenShannon:
		return JensenShannon(ref, cur, 0), math.NaN()
	case MethodLInf:
		return LInf(ref, cur), math.NaN()
	case MethodChiSquare:
		return chiSquareBins(ref, cur)
	}
	panic("drift: binnedStat of " + string(m))
}

// chiSquareBins is chi2_contingency([ref, cur]) over the bins not empty in both.
func chiSquareBins(ref, cur []float64) (stat, p float64) {
	var rr, cc []float64
	for i := range ref {
		if ref[i] != 0 || cur[i] != 0 {
			rr = append(rr, ref[i])
			cc = append(cc, cur[i])
		}
	}
	res, err := ChiSquareContingency([][]float64{rr, cc}, true)
	if err != nil { // a row of zeros: no evidence either way
		return 0, 1
	}
	return res.Statistic, res.P
}

// atoms returns the distinct sample values, ascending, and for each sorted sample position
// the index of its value.
func (r *Reference) atoms() (values []float64, atomOf []int32) {
	atomOf = make([]int32, len(r.sample))
	for i, v := range r.sample {
		if i == 0 || v != r.sample[i-1] {
			values = append(values, v)
		}
		atomOf[i] = int32(len(values) - 1)
	}
	return values, atomOf
}
