package drift_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/drift"
	"github.com/flywheel-ml/flywheel/ml/profile"
)

func normals(rng *rand.Rand, n int, mu, sd float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = mu + sd*rng.NormFloat64()
	}
	return x
}

// alarmRates calibrates `refs` independent N(0,1) reference samples of 5,000 values for
// windows of n and scores `wins` fresh N(0,1) windows against each (false alarms), and as
// many N(0.25, 1) windows (detections). The two-sample null holds over the draw of the
// reference, so the rate is measured over many references (for one fixed reference it
// varies around α, the more so the larger n is against the sample: see the README).
func alarmRates(t *testing.T, m drift.Method, n, refs, wins int, seed uint64) (fa, det float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	opt := drift.CalibrationOptions{Resamples: 999, Seed: seed} // 10 of 1000 above: α = 1 % exactly
	var alarms, hits int
	for r := range refs {
		ref, err := drift.NewReference(profile.Feature{Name: "x", Kind: drift.Numeric}, normals(rng, 5000, 0, 1))
		if err != nil {
			t.Fatal(err)
		}
		opt.Seed = seed + uint64(r)
		nl, err := drift.Calibrate(ref, m, n, opt)
		if err != nil {
			t.Fatal(err)
		}
		for range wins {
			s, err := ref.Statistic(m, normals(rng, n, 0, 1))
			if err != nil {
				t.Fatal(err)
			}
			if nl.Drift(s.Statistic) {
				alarms++
			}
			s, _ = ref.Statistic(m, normals(rng, n, 0.25, 1))
			if nl.Drift(s.Statistic) {
				hits++
			}
		}
	}
	return float64(alarms) / float64(refs*wins), float64(hits) / float64(refs*wins)
}

// TestCalibratedFalseAlarmRate: calibrated thresholds (α = 1 %) keep the false-alarm rate
// at 1 % for windows of 500 and 1,000 (and 10,000 without -short) against 5,000-value
// reference samples, over ≥ 1,000 fresh windows each, and detect a 0.25σ mean shift at
// n = 1,000 in ≥ 90 % of windows.
func TestCalibratedFalseAlarmRate(t *testing.T) {
	cases := []struct {
		n, refs, wins int
	}{{500, 12, 100}, {1000, 12, 100}, {10000, 20, 50}}
	for _, c := range cases {
		for _, m := range []drift.Method{drift.MethodKS, drift.MethodWasserstein} {
			t.Run(fmt.Sprintf("%s/n=%d", m, c.n), func(t *testing.T) {
				if c.n > 1000 && testing.Short() {
					t.Skip("-short: windows of 10,000 take ~10 s")
				}
				t.Parallel()
				fa, det := alarmRates(t, m, c.n, c.refs, c.wins, 11)
				t.Logf("%s n=%d: false alarms %.2f%% over %d windows (%d references), 0.25σ detected in %.1f%%",
					m, c.n, 100*fa, c.refs*c.wins, c.refs, 100*det)
				if fa > 0.015 {
					t.Errorf("false-alarm rate %.4f > 0.015", fa)
				}
				if c.n >= 1000 && det < 0.9 {
					t.Errorf("0.25σ shift detected in %.3f of windows, want ≥ 0.9", det)
				}
				if c.n == 500 && det < 0.85 {
					t.Errorf("0.25σ shift detected in %.3f of windows at n=500", det)
				}
			})
		}
	}
}

// profileOf profiles a frame with one numeric N(0,1) feature and one categorical feature
// with shares 0.5/0.3/0.15/0.05 over `rows` rows.
func profileOf(t *testing.T, rows int) *profile.Profile {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	f := &dataset.Frame{Names: []string{"x", "c"}, Kinds: []dataset.Kind{dataset.Numeric, dataset.Categorical},
		Cols: [][]float64{normals(rng, rows, 0, 1), categories(rng, rows, []float64{0.5, 0.3, 0.15, 0.05})}}
	p, err := profile.Build(f, make([]float64, rows), profile.Options{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func categories(rng *rand.Rand, n int, p []float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		u := rng.Float64()
		for c, pc := range p {
			if u < pc || c == len(p)-1 {
				out[i] = float64(c)
				break
			}
			u -= pc
		}
	}
	return out
}

// TestBinnedCalibration: PSI, Jensen–Shannon, chi-square and L∞ against a 100,000-row
// profile (quantile bins; categorical frequencies), calibrated by the parametric bootstrap
// of the bins: ≤ 1.5 % false alarms over 1,500 windows of 1,000, and the shifts detected.
func TestBinnedCalibration(t *testing.T) {
	p := profileOf(t, 100000)
	refs, err := drift.References(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := drift.NewCalibrator(refs, drift.CalibrationOptions{Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(6, 7))
	const n, windows = 1000, 1500
	for _, m := range []drift.Method{drift.MethodPSI, drift.MethodJensenShannon, drift.MethodChiSquare, drift.MethodLInf} {
		for _, feature := range []string{"x", "c"} {
			var fa, det, pOK int
			for range windows {
				var null, shifted []float64
				if feature == "x" {
					null, shifted = normals(rng, n, 0, 1), normals(rng, n, 0.25, 1)
				} else {
					null = categories(rng, n, []float64{0.5, 0.3, 0.15, 0.05})
					shifted = categories(rng, n, []float64{0.42, 0.3, 0.18, 0.10})
				}
				r, err := c.Test(feature, m, null)
				if err != nil {
					t.Fatal(err)
				}
				if r.Drift {
					fa++
				}
				if r.Drift != (r.Statistic > r.Threshold) || (r.Drift && r.PValue > 0.01) {
					t.Fatalf("inconsistent result %+v", r)
				}
				if r.PValue <= 0.01 {
					pOK++
				}
				if r, _ = c.Test(feature, m, shifted); r.Drift {
					det++
				}
			}
			t.Logf("%s on %s, n=%d: false alarms %.2f%%, calibrated p ≤ 0.01 in %.2f%%, shift detected %.1f%%",
				m, feature, n, 100*float64(fa)/windows, 100*float64(pOK)/windows, 100*float64(det)/windows)
			if float64(fa)/windows > 0.015 {
				t.Errorf("%s on %s: false-alarm rate %.4f", m, feature, float64(fa)/windows)
			}
			if float64(det)/windows < 0.9 {
				t.Errorf("%s on %s: shift detected in %.3f of windows", m, feature, float64(det)/windows)
			}
		}
	}
}

func TestCalibrationDeterministicAndCached(t *testing.T) {
	p := profileOf(t, 20000)
	refs, _ := drift.References(p)
	opt := drift.CalibrationOptions{Seed: 42, Resamples: 199, Alpha: 0.05}
	a, _ := drift.NewCalibrator(refs, opt)
	b, _ := drift.NewCalibrator(refs, opt)
	// Different call orders, concurrently: same draws.
	var wg sync.WaitGroup
	for _, m := range []drift.Method{drift.MethodKS, drift.MethodPSI, drift.MethodWasserstein} {
		wg.Add(2)
		go func() { defer wg.Done(); a.Null("x", m, 800) }()
		go func() { defer wg.Done(); a.Null("x", m, 850) }()
	}
	wg.Wait()
	for _, m := range []drift.Method{drift.MethodWasserstein, drift.MethodPSI, drift.MethodKS} {
		na, err := a.Null("x", m, 801) // calibrated at 800, cached
		if err != nil {
			t.Fatal(err)
		}
		nb, _ := b.Null("x", m, 800)
		if na.N != 800 || na.Threshold != nb.Threshold || fmt.Sprint(na.Draws) != fmt.Sprint(nb.Draws) {
			t.Fatalf("%s: calibration must not depend on call order: %v vs %v", m, na.Threshold, nb.Threshold)
		}
		again, _ := a.Null("x", m, 809)
		if again != na {
			t.Fatalf("%s: sizes 801 and 809 share the calibration at 800", m)
		}
	}
	other, _ := drift.NewCalibrator(refs, drift.CalibrationOptions{Seed: 43, Resamples: 199, Alpha: 0.05})
	n1, _ := a.Null("x", drift.MethodKS, 800)
	n2, _ := other.Null("x", drift.MethodKS, 800)
	if fmt.Sprint(n1.Draws) == fmt.Sprint(n2.Draws) {
		t.Fatal("another seed must give other draws")
	}
	if _, err := a.Null("nope", drift.MethodKS, 800); !errors.Is(err, drift.ErrUnknownFeature) {
		t.Fatalf("unknown feature: %v", err)
	}
	if _, err := a.Null("c", drift.MethodKS, 800); !errors.Is(err, drift.ErrKind) {
		t.Fatalf("KS on a categorical: %v", err)
	}
	if _, err := a.Null("prediction", drift.MethodWasserstein, 800); !errors.Is(err, drift.ErrNoSample) {
		t.Fatalf("Wasserstein on the predictions (no raw sample): %v", err)
	}
	if _, err := a.Null("prediction", drift.MethodPSI, 800); err != nil {
		t.Fatalf("PSI on the predictions: %v", err)
	}
}

func TestCalibrationSize(t *testing.T) {
	for n, want := range map[int]int{1: 1, 99: 99, 100: 100, 109: 100, 1234: 1200, 9999: 9900, 10000: 10000, 123456: 120000} {
		if got := drift.CalibrationSize(n); got != want {
			t.Errorf("CalibrationSize(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestNullPValueAndFloor(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	ref, _ := drift.NewReference(profile.Feature{Name: "x", Kind: drift.Numeric}, normals(rng, 2000, 0, 1))
	nl, err := drift.Calibrate(ref, drift.MethodWasserstein, 500, drift.CalibrationOptions{Resamples: 999, Floors: map[drift.Method]float64{drift.MethodWasserstein: 0.2}})
	if err != nil {
		t.Fatal(err)
	}
	if nl.Threshold != 0.2 || nl.Quantile >= 0.2 || nl.Quantile != nl.Draws[989] {
		t.Fatalf("threshold %v, quantile %v (draw 990 %v)", nl.Threshold, nl.Quantile, nl.Draws[989])
	}
	if p := nl.PValue(0.19); p != 1 {
		t.Fatalf("below the floor p must be 1, got %v", p)
	}
	if p := nl.PValue(10); p != 1.0/1000 {
		t.Fatalf("above every draw p = 1/(B+1), got %v", p)
	}
	if p := nl.PValue(math.NaN()); !math.IsNaN(p) {
		t.Fatal("NaN statistic")
	}
	// Without a floor, p of a null draw is its rank.
	nl.Floor = 0
	if p := nl.PValue(nl.Draws[0]); p != 1 {
		t.Fatalf("p of the smallest draw %v", p)
	}
	if p := nl.PValue(nl.Draws[998]); p != 2.0/1000 {
		t.Fatalf("p of the largest draw %v", p)
	}
	for _, bad := range []drift.CalibrationOptions{{Alpha: 1.5}, {Alpha: 0.01, Resamples: 50}, {Floors: map[drift.Method]float64{"ks2": 1}}, {Floors: map[drift.Method]float64{drift.MethodKS: -1}}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v must not validate", bad)
		}
	}
	if drift.ResamplesFor(20, 0.01) != 1999 || drift.ResamplesFor(50, 0.01) != 4999 {
		t.Fatalf("ResamplesFor: %d %d", drift.ResamplesFor(20, 0.01), drift.ResamplesFor(50, 0.01))
	}
}
