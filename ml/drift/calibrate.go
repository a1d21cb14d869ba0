package drift

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"

	"gonum.org/v1/gonum/stat/distuv"
)

// Calibration defaults.
const (
	DefaultAlpha     = 0.01
	DefaultResamples = 1999
)

// CalibrationOptions configure threshold calibration. The zero value means the defaults.
type CalibrationOptions struct {
	// Alpha is the false-alarm rate per window and feature the threshold is set for;
	// default DefaultAlpha (1 %).
	Alpha float64
	// Resamples is B, the number of windows drawn under no drift; default DefaultResamples.
	// The threshold is an order statistic of the B draws, and the smallest calibrated
	// p-value is 1/(B+1): Benjamini–Hochberg over k features at FDR q can reject only if
	// 1/(B+1) ≤ q/k, so B must be at least ResamplesFor(k, q). B·Alpha should be well above
	// 1 for a stable threshold (the default gives 20 draws above it).
	Resamples int
	// Seed makes calibration deterministic: the same seed, reference, method and window
	// size give the same null draws whatever the order or concurrency of calls.
	Seed uint64
	// Floors are optional effect-size floors per method: the threshold is at least the
	// floor, and a statistic below it has p-value 1. A floor well above the reference
	// sample's own noise (e.g. 0.05 for MethodWasserstein, 0.04 for MethodKS with a
	// 5,000-row sample) keeps windows much larger than the sample from alarming on that
	// noise, and trivially small shifts on huge windows from alarming at all.
	Floors map[Method]float64
}

func (o CalibrationOptions) withDefaults() CalibrationOptions {
	if o.Alpha == 0 {
		o.Alpha = DefaultAlpha
	}
	if o.Resamples == 0 {
		o.Resamples = DefaultResamples
	}
	return o
}

// Validate reports options that cannot calibrate (after defaults are applied).
func (o CalibrationOptions) Validate() error {
	o = o.withDefaults()
	if !(o.Alpha > 0 && o.Alpha < 1) {
		return fmt.Errorf("drift: alpha %v outside (0, 1)", o.Alpha)
	}
	if o.Resamples < 1 || allowedAbove(o.Alpha, o.Resamples) < 1 {
		return fmt.Errorf("drift: %d resamples cannot set a threshold at alpha %v: need at least %d",
			o.Resamples, o.Alpha, int(math.Ceil(1/o.Alpha))-1)
	}
	for m, f := range o.Floors {
		if _, err := ParseMethod(string(m)); err != nil {
			return fmt.Errorf("drift: floor for %w", err)
		}
		if !(f >= 0) || math.IsInf(f, 1) {
			return fmt.Errorf("drift: floor %v for %s", f, m)
		}
	}
	return nil
}

// allowedAbove is how many of B null draws may lie above the threshold: ⌊α(B+1)⌋.
func allowedAbove(alpha float64, b int) int {
	return int(math.Floor(alpha*float64(b+1) + 1e-9))
}

// ResamplesFor returns the smallest B whose smallest calibrated p-value, 1/(B+1), lets
// Benjamini–Hochberg at FDR q reject one feature out of k.
func ResamplesFor(k int, q float64) int {
	return max(DefaultResamples, int(math.Ceil(float64(k)/q-1e-9))-1)
}

// CalibrationSize is the window size a window of n non-missing values is calibrated at:
// n rounded down to two significant digits (n itself below 100), so time-based windows of
// varying size share a few calibrations. Fewer values make a wider null, so the rounding
// errs towards fewer alarms (at most 10 %, typically 1–5 %, fewer values).
func CalibrationSize(n int) int {
	if n < 100 {
		return n
	}
	p := 1
	for n/p >= 100 {
		p *= 10
	}
	return n / p * p
}

// Null is a statistic's distribution under no drift for one reference, method and window
// size, estimated by resampling, with the alarm threshold it implies.
type Null struct {
	Feature string
	Method  Method
	N       int // window size (non-missing values) calibrated for
	Alpha   float64
	// Quantile is the ⌈(1−α)(B+1)⌉-th smallest draw: a new statistic from the null exceeds
	// it with probability at most α (the draws and a new one are exchangeable).
	Quantile  float64
	Floor     float64
	Threshold float64   // max(Quantile, Floor); a statistic above it is drift
	Draws     []float64 // the B null statistics, ascending
}

// Drift reports whether stat is above the threshold.
func (nl *Null) Drift(stat float64) bool { return stat > nl.Threshold }

// PValue is the calibrated p-value of stat: (1 + #{draws ≥ stat}) / (B + 1), the rank of
// the observed statistic among the null draws; 1 when stat is below the floor; NaN for NaN.
// It is valid (P(p ≤ u) ≤ u under no drift) and Drift(stat) implies p ≤ α.
func (nl *Null) PValue(stat float64) float64 {
	if math.IsNaN(stat) {
		return math.NaN()
	}
	if stat < nl.Floor {
		return 1
	}
	above := len(nl.Draws) - sort.SearchFloat64s(nl.Draws, stat)
	return float64(1+above) / float64(len(nl.Draws)+1)
}

// Calibrate estimates the null distribution of method m for windows of n non-missing values
// against reference r, and its threshold (see the package documentation for the scheme).
// Deterministic for opt.Seed. Cost: B draws of n + (sample size) values for KS and
// Wasserstein, B multinomial draws over the bins for the binned methods.
func Calibrate(r *Reference, m Method, n int, opt CalibrationOptions) (*Null, error) {
	opt = opt.withDefaults()
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if err := r.Supports(m); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("drift: calibrating %s on %q for windows of %d values: %w", m, r.name, n, ErrNoValues)
	}
	pcg := rand.NewPCG(keySeed(opt.Seed, r.name, m, n))
	draws := make([]float64, opt.Resamples)
	if m.usesSample() {
		sampleNull(r, m, n, rand.New(pcg), draws)
	} else {
		binnedNull(r, m, n, pcg, draws)
	}
	slices.Sort(draws)
	k := opt.Resamples + 1 - allowedAbove(opt.Alpha, opt.Resamples)
	nl := &Null{Feature: r.name, Method: m, N: n, Alpha: opt.Alpha, Quantile: draws[k-1], Floor: opt.Floors[m], Draws: draws}
	nl.Threshold = math.Max(nl.Quantile, nl.Floor)
	return nl, nil
}

// keySeed derives the stream of one (feature, method, size) from the seed.
func keySeed(seed uint64, feature string, m Method, n int) (uint64, uint64) {
	h := fnv.New64a()
	h.Write([]byte(feature))
	h.Write([]byte{0})
	h.Write([]byte(m))
	h.Write(binary.LittleEndian.AppendUint64(nil, uint64(n)))
	return seed, h.Sum64()
}

// sampleNull fills draws with KS or normed-Wasserstein statistics between a window W* of n
// values and a reference R* of m values, both drawn with replacement from the reference's
// sample of m values: the pooled bootstrap. Draws are kept as counts over the sample's
// distinct values, so a draw costs n + m random indices and one pass over those values,
// and the statistics equal KSTwoSample and NormedWasserstein on the materialised samples.
func sampleNull(r *Reference, m Method, n int, rng *rand.Rand, draws []float64) {
	values, atomOf := r.atoms()
	M := len(r.sample)
	cw := make([]int64, len(values))
	cr := make([]int64, len(values))
	for b := range draws {
		clear(cw)
		clear(cr)
		for range n {
			cw[atomOf[rng.IntN(M)]]++
		}
		for range M {
			cr[atomOf[rng.IntN(M)]]++
		}
		draws[b] = countStat(m, values, cw, cr)
	}
}

// countStat is KS D or normed W₁ (normalised by the reference's standard deviation) between
// a window and a reference given as counts cw and cr over the ascending distinct values.
func countStat(m Method, values []float64, cw, cr []int64) float64 {
	var n, M int64
	for a := range values {
		n += cw[a]
		M += cr[a]
	}
	var sw, sr int64
	if m == MethodKS {
		var best int64
		for a := range values {
			sw += cw[a]
			sr += cr[a]
			d := sw*M - sr*n
			best = max(best, d, -d)
		}
		g := int64(gcd(int(n), int(M)))
		return float64(best/g) / float64(n/g*M)
	}
	var w, mean float64
	for a := range values {
		sw += cw[a]
		sr += cr[a]
		if a+1 < len(values) {
			w += math.Abs(float64(sw)/float64(n)-float64(sr)/float64(M)) * (values[a+1] - values[a])
		}
		mean += float64(cr[a]) * values[a]
	}
	mean /= float64(M)
	var ss float64
	for a, v := range values {
		ss += float64(cr[a]) * (v - mean) * (v - mean)
	}
	return w / math.Max(math.Sqrt(ss/float64(M)), 0.001)
}

// binnedNull fills draws with a binned statistic between a window's bin counts drawn
// Multinomial(n, p̂) and reference bin counts drawn Multinomial(N, p̂), p̂ the reference's
// bin shares and N its number of non-missing rows (the parametric bootstrap of the
// profile's bins, which hold all N reference rows, not just the sample).
func binnedNull(r *Reference, m Method, n int, src rand.Source, draws []float64) {
	p := shares(r.refCounts)
	total := int(math.Round(r.refRows))
	win := make([]float64, len(p))
	ref := make([]float64, len(p))
	for b := range draws {
		multinomial(win, n, p, src)
		multinomial(ref, total, p, src)
		draws[b], _ = binnedStat(m, ref, win)
	}
}

// multinomial sets dst to counts of n draws over categories with probabilities p, by
// successive conditional binomials.
func multinomial(dst []float64, n int, p []float64, src rand.Source) {
	last := -1
	for i, pi := range p {
		if pi > 0 {
			last = i
		}
	}
	rem, prem := n, 1.0
	for i, pi := range p {
		dst[i] = 0
		if rem == 0 || pi <= 0 {
			continue
		}
		q := pi / prem
		if i == last || q >= 1 {
			dst[i] = float64(rem)
			rem = 0
			continue
		}
		c := int(distuv.Binomial{N: float64(rem), P: q, Src: src}.Rand())
		dst[i] = float64(c)
		rem -= c
		prem -= pi
	}
}

// Calibrator scores windows against a model version's references with calibrated
// thresholds, calibrating each (feature, method, calibration size) once and keeping it.
// Make one per reference profile (model version). Safe for concurrent use; concurrent
// requests for the same key wait for one calibration.
type Calibrator struct {
	opt  CalibrationOptions
	refs map[string]*Reference

	mu    sync.Mutex
	nulls map[nullKey]*nullEntry
}

type nullKey struct {
	feature string
	method  Method
	n       int
}

type nullEntry struct {
	once sync.Once
	null *Null
	err  error
}

// NewCalibrator returns a calibrator over refs (e.g. References(profile)).
func NewCalibrator(refs []*Reference, opt CalibrationOptions) (*Calibrator, error) {
	opt = opt.withDefaults()
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	c := &Calibrator{opt: opt, refs: map[string]*Reference{}, nulls: map[nullKey]*nullEntry{}}
	for _, r := range refs {
		if _, dup := c.refs[r.name]; dup {
			return nil, fmt.Errorf("drift: two references named %q", r.name)
		}
		c.refs[r.name] = r
	}
	return c, nil
}

// Reference returns the named reference, or an error wrapping ErrUnknownFeature.
func (c *Calibrator) Reference(feature string) (*Reference, error) {
	r, ok := c.refs[feature]
	if !ok {
		return nil, fmt.Errorf("drift: %q: %w", feature, ErrUnknownFeature)
	}
	return r, nil
}

// Null returns the calibrated null for windows of n non-missing values, calibrated at
// CalibrationSize(n) and cached.
func (c *Calibrator) Null(feature string, m Method, n int) (*Null, error) {
	r, err := c.Reference(feature)
	if err != nil {
		return nil, err
	}
	k := nullKey{feature, m, CalibrationSize(n)}
	c.mu.Lock()
	e, ok := c.nulls[k]
	if !ok {
		e = &nullEntry{}
		c.nulls[k] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.null, e.err = Calibrate(r, m, k.n, c.opt) })
	return e.null, e.err
}

// Result is one window's verdict for one feature and method.
type Result struct {
	Feature   string
	Method    Method
	Statistic float64
	Threshold float64
	// PValue is the calibrated p-value (Null.PValue); use it across features with
	// BenjaminiHochberg.
	PValue float64
	// AnalyticP is the textbook p-value where the method has one (KS, chi-square), else NaN.
	AnalyticP   float64
	Drift       bool // Statistic > Threshold
	N           int  // non-missing window values
	Missing     int  // NaN window values, left out
	CalibratedN int  // the window size the threshold was calibrated at
}

// Test scores a window of one feature with method m against its calibrated threshold.
func (c *Calibrator) Test(feature string, m Method, window []float64) (Result, error) {
	r, err := c.Reference(feature)
	if err != nil {
		return Result{}, err
	}
	s, err := r.Score(m, window)
	if err != nil {
		return Result{}, err
	}
	nl, err := c.Null(feature, m, s.N)
	if err != nil {
		return Result{}, err
	}
	return Result{Feature: feature, Method: m, Statistic: s.Statistic, Threshold: nl.Threshold,
		PValue: nl.PValue(s.Statistic), AnalyticP: s.P, Drift: nl.Drift(s.Statistic),
		N: s.N, Missing: s.Missing, CalibratedN: nl.N}, nil
}
