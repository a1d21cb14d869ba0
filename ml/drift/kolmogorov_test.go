package drift

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// Tolerances: every kstwo value agrees with scipy to 1e-12 relative (measured: ≤ 5e-15).
const kstwoTol = 1e-12

func relErr(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Max(math.Abs(want), 1e-300)
}

// TestKstwoSFMatchesScipy checks kstwo.sf in every regime of Simard and L'Ecuyer's method
// choice (see kolmogorov.go) against scipy 1.10 (testdata/scipy_reference.json).
func TestKstwoSFMatchesScipy(t *testing.T) {
	raw, err := os.ReadFile("testdata/scipy_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Kstwo []struct {
			N  int     `json:"n"`
			D  float64 `json:"d"`
			SF float64 `json:"sf"`
		} `json:"kstwo"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Kstwo) < 30 {
		t.Fatalf("only %d kstwo cases", len(ref.Kstwo))
	}
	worst := 0.0
	for _, c := range ref.Kstwo {
		got := kstwoSF(c.N, c.D)
		e := relErr(got, c.SF)
		worst = math.Max(worst, e)
		if e > kstwoTol {
			t.Errorf("kstwo.sf(%v, %d) = %.17g, scipy %.17g (rel %.2e)", c.D, c.N, got, c.SF, e)
		}
	}
	t.Logf("%d kstwo.sf values, worst relative error %.2e", len(ref.Kstwo), worst)
}

// TestKolmogorovLimitIsNotScipysAsymp pins the last column of the shared README's table A1:
// the classic limit kstwobign.sf(√en·D), which scipy's ks_2samp does not use.
func TestKolmogorovLimitIsNotScipysAsymp(t *testing.T) {
	for _, c := range []struct {
		n1, n2  int
		d, want float64
	}{
		{8, 10, 0.29999999999999999, 0.8186211744710058},
		{20, 15, 0.56666666666666665, 0.0081347132204462012},
		{40, 40, 0.27500000000000002, 0.097104523516538227},
	} {
		en := float64(c.n1*c.n2) / float64(c.n1+c.n2)
		if got := kolmogorovSF(math.Sqrt(en) * c.d); relErr(got, c.want) > 1e-12 {
			t.Errorf("kstwobign.sf(√%v·%v) = %.17g, scipy %.17g", en, c.d, got, c.want)
		}
	}
}

// TestExactMethodsAgree: Durbin's matrix and Pomeranz's recursion are both exact, so they
// must agree wherever both apply, including at t = nd integer and at half-integers.
func TestExactMethodsAgree(t *testing.T) {
	for n := 2; n <= 60; n += 3 {
		for _, d := range []float64{1.5, 2, 2.5, 3, 3.7, 5, 6.5} {
			d /= float64(n)
			if d >= 0.5 || float64(n)*d <= 1 {
				continue
			}
			a, b := durbinCDF(n, d), pomeranzCDF(n, d)
			if math.Abs(a-b) > 1e-13 {
				t.Errorf("n=%d d=%v: Durbin %.17g, Pomeranz %.17g", n, d, a, b)
			}
		}
	}
}

// TestSmirnovSmallN checks the one-sided tail against its closed forms for n = 2, and that
// the two-sided tail is twice the one-sided one above d = 1/2.
func TestSmirnovSmallN(t *testing.T) {
	// n = 2, 1/2 ≤ x ≤ 1: P(D₂⁺ ≥ x) = (1 − x)².
	for _, x := range []float64{0.5, 0.6, 0.75, 0.9} {
		if got, want := smirnovSF(2, x), (1-x)*(1-x); relErr(got, want) > 1e-15 {
			t.Errorf("smirnov(2, %v) = %v, want %v", x, got, want)
		}
	}
	if got := kstwoSF(2, 0.6); relErr(got, 2*0.4*0.4) > 1e-15 {
		t.Errorf("kstwo.sf(0.6, 2) = %v", got)
	}
}
