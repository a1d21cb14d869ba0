package drift_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/drift"
)

// randomSample has ties (values on a coarse grid), sometimes NaN.
func randomSample(rng *rand.Rand) []float64 {
	x := make([]float64, 1+rng.IntN(80))
	scale := []float64{1, 10, 1000}[rng.IntN(3)]
	for i := range x {
		x[i] = math.Round(rng.NormFloat64()*scale) / scale
		if rng.IntN(10) == 0 {
			x[i] = math.NaN()
		}
	}
	return x
}

func randomHist(rng *rand.Rand, k int) []float64 {
	h := make([]float64, k)
	for i := range h {
		if rng.IntN(4) > 0 {
			h[i] = float64(rng.IntN(50))
		}
	}
	h[rng.IntN(k)]++
	return h
}

// TestProperties: ranges, symmetry and missing values, on random inputs with ties and
// empty bins.
func TestProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for range 2000 {
		x, y := randomSample(rng), randomSample(rng)
		a, errA := drift.KSTwoSample(x, y, drift.KSAuto)
		b, errB := drift.KSTwoSample(y, x, drift.KSAuto)
		if (errA == nil) != (errB == nil) {
			t.Fatal("KS errors not symmetric")
		}
		if errA == nil {
			if a.D != b.D || a.P != b.P || !(a.D >= 0 && a.D <= 1) || !(a.P >= 0 && a.P <= 1) {
				t.Fatalf("KS %+v vs %+v", a, b)
			}
			if a.N1+a.Missing1 != len(x) || a.N2+a.Missing2 != len(y) {
				t.Fatalf("KS counts %+v for %d, %d values", a, len(x), len(y))
			}
			if w, v := drift.Wasserstein(x, y), drift.Wasserstein(y, x); !(w >= 0) || math.Abs(w-v) > 1e-12*math.Max(1, w) {
				t.Fatalf("W1 %v vs %v", w, v)
			}
		}
		k := 2 + rng.IntN(10)
		p, q := randomHist(rng, k), randomHist(rng, k)
		js, js2 := drift.JensenShannon(p, q, 0), drift.JensenShannon(p, q, 2)
		if !(js >= 0 && js <= math.Sqrt(math.Ln2)+1e-12) || !(js2 >= 0 && js2 <= 1+1e-12) ||
			math.Abs(js-drift.JensenShannon(q, p, 0)) > 1e-12 || math.Abs(js2-js/math.Sqrt(math.Ln2)) > 1e-12 {
			t.Fatalf("JS %v %v for %v %v", js, js2, p, q)
		}
		if psi := drift.PSI(p, q); !(psi >= 0) || math.Abs(psi-drift.PSI(q, p)) > 1e-12*math.Max(1, psi) {
			t.Fatalf("PSI %v for %v %v", psi, p, q)
		}
		if l := drift.LInf(p, q); !(l >= 0 && l <= 1) || l != drift.LInf(q, p) {
			t.Fatalf("L∞ %v", l)
		}
		r, err := drift.ChiSquareContingency([][]float64{p, q}, true)
		if err == nil {
			s, _ := drift.ChiSquareContingency([][]float64{q, p}, true)
			if !(r.P >= 0 && r.P <= 1) || math.Abs(r.Statistic-s.Statistic) > 1e-9*math.Max(1, r.Statistic) {
				t.Fatalf("chi-square %+v vs %+v", r, s)
			}
		}
	}
	// Identical inputs are at distance 0.
	x := []float64{3, 1, 2, 2, math.NaN()}
	if r, _ := drift.KSTwoSample(x, x, drift.KSAuto); r.D != 0 || r.P != 1 {
		t.Fatalf("KS of a sample with itself %+v", r)
	}
	h := []float64{3, 0, 5}
	if drift.JensenShannon(h, h, 0) != 0 || drift.PSI(h, h) != 0 || drift.LInf(h, h) != 0 || drift.Wasserstein(x, x) != 0 {
		t.Fatal("distance of a histogram to itself")
	}
}
