package drift_test

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/drift"
)

// Agreement with scipy 1.10.1: 1e-12 relative for every value below. Measured worst cases
// (logged): 9e-15 for ks_2samp p-values (exact lattice sums and kstwo), a few ulps for the
// rest.
const tol = 1e-12

func rel(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Max(math.Abs(want), 1e-300)
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if rel(got, want) > tol {
		t.Errorf("%s = %.17g, scipy %.17g (rel %.2e > %.0e)", what, got, want, rel(got, want), tol)
	}
}

// Table A1 of /work/shared/bench/drift/README.md (Part A), pasted.
var a1 = []struct {
	name                     string
	x, y                     []float64
	d, pExact, pAsymp, pAuto float64
}{
	{"KS-1 (n=8 vs 10, same dist)",
		[]float64{-0.327, -0.974, 0.495, 0.425, -0.441, -0.100, -1.804, -0.882},
		[]float64{0.217, 0.596, -0.009, -0.823, -0.355, 0.525, -1.367, 1.205, -0.229, -0.805},
		0.29999999999999999, 0.72274784039489914, 0.77079999999999982, 0.72274784039489914},
	{"KS-2 (n=20 vs 15, shift +1.0)",
		[]float64{-1.039, -1.129, 0.763, -1.355, -0.843, 0.102, -1.213, -1.155, 1.688, -0.145, -0.374, 2.149, 0.997, 0.576, 0.868, 0.568, 0.131, -2.338, 0.650, -0.139},
		[]float64{2.522, 1.998, 2.358, 0.598, 1.456, 2.314, 0.003, 0.865, 0.459, 1.199, 0.919, 0.651, 1.832, 1.517, 1.827},
		0.56666666666666665, 0.0048496464451674697, 0.0029415088239735624, 0.0048496464451674697},
	{"KS-3 (n=40 vs 40, scale 1 vs 2)",
		[]float64{0.659, -1.315, 0.175, -0.702, 1.564, -0.078, 1.117, 0.667, 0.124, -1.346, -0.280, 0.395, 0.955, 1.743, 0.472, 2.090, -0.366, 0.304, -0.351, -0.692, -1.698, -1.894, 1.371, -1.605, -0.858, -1.299, 0.004, -1.434, -1.363, 0.377, 0.150, -0.407, 1.192, 1.392, 0.380, -0.748, 0.436, 2.240, 0.404, 0.868},
		[]float64{-0.178, 4.602, -0.020, 3.592, 4.914, -1.635, -2.427, -1.794, -1.895, -3.075, 1.351, 0.662, -2.219, -0.710, 4.398, 0.193, 0.627, 0.768, -3.143, 1.840, 2.508, -3.928, 1.276, -1.927, 0.025, -1.052, -0.615, -4.885, -3.052, 0.202, -2.237, 0.466, -1.662, -0.605, 1.425, 1.966, -0.810, 4.206, 0.002, 0.943},
		0.27500000000000002, 0.09707484379785862, 0.07914468286207077, 0.09707484379785862},
}

func TestKSTwoSampleTableA1(t *testing.T) {
	for _, c := range a1 {
		for _, m := range []struct {
			method drift.KSMethod
			p      float64
			used   drift.KSMethod
		}{{drift.KSExact, c.pExact, drift.KSExact}, {drift.KSAsymp, c.pAsymp, drift.KSAsymp}, {drift.KSAuto, c.pAuto, drift.KSExact}} {
			r, err := drift.KSTwoSample(c.x, c.y, m.method)
			if err != nil {
				t.Fatal(err)
			}
			near(t, c.name+" D", r.D, c.d, tol)
			near(t, c.name+" p "+m.method.String(), r.P, m.p, tol)
			if r.Method != m.used || r.N1 != len(c.x) || r.N2 != len(c.y) {
				t.Errorf("%s %v: %+v", c.name, m.method, r)
			}
			// D is symmetric; so is the p-value.
			s, _ := drift.KSTwoSample(c.y, c.x, m.method)
			if s.D != r.D || s.P != r.P {
				t.Errorf("%s %v not symmetric: %v/%v vs %v/%v", c.name, m.method, r.D, r.P, s.D, s.P)
			}
		}
	}
}

type scipyJSON struct {
	KS2 []struct {
		Name   string     `json:"name"`
		X      [6]float64 `json:"x"`
		Y      [6]float64 `json:"y"`
		D      float64    `json:"d"`
		PAuto  float64    `json:"p_auto"`
		PExact float64    `json:"p_exact"`
		PAsymp float64    `json:"p_asymp"`
		DAsymp float64    `json:"d_asymp"`
	} `json:"ks_2samp"`
	Chi2 []struct {
		X   float64 `json:"x"`
		DoF int     `json:"dof"`
		SF  float64 `json:"sf"`
	} `json:"chi2_sf"`
	Contingency []struct {
		Table [][]float64 `json:"table"`
		Stat  float64     `json:"stat"`
		P     float64     `json:"p"`
		DoF   int         `json:"dof"`
	} `json:"contingency"`
	Wasserstein []struct {
		U   []float64 `json:"u"`
		V   []float64 `json:"v"`
		W1  float64   `json:"w1"`
		Std float64   `json:"std"`
	} `json:"wasserstein"`
	JS []struct {
		P   []float64 `json:"p"`
		Q   []float64 `json:"q"`
		E   float64   `json:"e"`
		Two float64   `json:"two"`
	} `json:"jensenshannon"`
}

func loadScipy(t *testing.T) scipyJSON {
	t.Helper()
	raw, err := os.ReadFile("testdata/scipy_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var s scipyJSON
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// gen reproduces scipy_reference.py's samples: ((i·a + c) mod p)/s + shift.
func gen(g [6]float64) []float64 {
	n, a, c, p := int64(g[0]), int64(g[1]), int64(g[2]), int64(g[3])
	out := make([]float64, n)
	for i := range n {
		out[i] = float64((i*a+c)%p)/g[4] + g[5]
	}
	return out
}

// TestKSTwoSampleMatchesScipy: ties, equal and unequal sizes up to 20,000, p-values down
// to 3e-16, on both sides of the auto switch at 10,000, every method.
func TestKSTwoSampleMatchesScipy(t *testing.T) {
	worst := 0.0
	for _, c := range loadScipy(t).KS2 {
		x, y := gen(c.X), gen(c.Y)
		for _, m := range []struct {
			method drift.KSMethod
			p, d   float64
		}{{drift.KSAuto, c.PAuto, c.D}, {drift.KSExact, c.PExact, c.D}, {drift.KSAsymp, c.PAsymp, c.DAsymp}} {
			if m.method == drift.KSExact && len(x) >= 20000 && testing.Short() {
				continue
			}
			r, err := drift.KSTwoSample(x, y, m.method)
			if err != nil {
				t.Fatal(err)
			}
			near(t, c.Name+" D", r.D, m.d, tol)
			near(t, c.Name+" p "+m.method.String(), r.P, m.p, tol)
			worst = math.Max(worst, rel(r.P, m.p))
		}
	}
	t.Logf("worst relative p-value error %.2e", worst)
}

func TestKSMissingValues(t *testing.T) {
	nan := math.NaN()
	r, err := drift.KSTwoSample([]float64{1, nan, 2, 3}, []float64{nan, 2.5, 4, nan, 5}, drift.KSAuto)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := drift.KSTwoSample([]float64{1, 2, 3}, []float64{2.5, 4, 5}, drift.KSAuto)
	if r.D != want.D || r.P != want.P || r.N1 != 3 || r.N2 != 3 || r.Missing1 != 1 || r.Missing2 != 2 {
		t.Fatalf("NaN must be left out and counted: %+v", r)
	}
	if _, err := drift.KSTwoSample([]float64{nan}, []float64{1}, drift.KSAuto); !errors.Is(err, drift.ErrNoValues) {
		t.Fatalf("all-missing sample: %v", err)
	}
}

// Table A2 of the shared README.
func TestChiSquareTableA2(t *testing.T) {
	t1 := [][]float64{{30, 45, 25}, {22, 60, 18}}
	t2 := [][]float64{{120, 80}, {95, 105}}
	for _, c := range []struct {
		name    string
		table   [][]float64
		yates   bool
		stat, p float64
		dof     int
	}{
		{"T1", t1, true, 4.5131612573473037, 0.10470790854430181, 2},
		{"T2 Yates", t2, true, 5.7925832809553741, 0.016093922847440822, 1},
		{"T2 none", t2, false, 6.2853551225644253, 0.012173968206197643, 1},
	} {
		r, err := drift.ChiSquareContingency(c.table, c.yates)
		if err != nil {
			t.Fatal(err)
		}
		near(t, c.name+" statistic", r.Statistic, c.stat, tol)
		near(t, c.name+" p", r.P, c.p, tol)
		if r.DoF != c.dof {
			t.Errorf("%s dof %d", c.name, r.DoF)
		}
	}
	for _, c := range []struct {
		name    string
		table   [][]float64
		stat, p float64
		dof     int
	}{
		{"T1", t1, 9.0933333333333337, 0.010602487170440565, 2},
		{"T2", t2, 13.020833333333332, 0.00030804470562774698, 1},
	} {
		r, err := drift.ChiSquareGoodnessOfFit(c.table[0], c.table[1])
		if err != nil {
			t.Fatal(err)
		}
		near(t, c.name+" GoF statistic", r.Statistic, c.stat, tol)
		near(t, c.name+" GoF p", r.P, c.p, tol)
		if r.DoF != c.dof {
			t.Errorf("%s GoF dof %d", c.name, r.DoF)
		}
	}
}

func TestChiSquareMatchesScipy(t *testing.T) {
	s := loadScipy(t)
	for _, c := range s.Contingency {
		r, err := drift.ChiSquareContingency(c.Table, true)
		if err != nil {
			t.Fatal(err)
		}
		near(t, "chi2_contingency statistic", r.Statistic, c.Stat, tol)
		near(t, "chi2_contingency p", r.P, c.P, tol)
		if r.DoF != c.DoF {
			t.Errorf("dof %d, scipy %d", r.DoF, c.DoF)
		}
	}
	// The survival function alone (gonum's regularised incomplete gamma), over 36 decades.
	for _, c := range s.Chi2 {
		near(t, "chi2.sf", drift.ChiSquareSF(c.X, c.DoF), c.SF, tol)
	}
	if _, err := drift.ChiSquareContingency([][]float64{{1, 0}, {2, 0}}, true); !errors.Is(err, drift.ErrTable) {
		t.Fatalf("a zero column must be refused like scipy: %v", err)
	}
}

// Table A3 of the shared README, and scipy values with ties and unequal sizes.
func TestWassersteinTableA3(t *testing.T) {
	for _, c := range []struct {
		u, v       []float64
		w1, normed float64
	}{
		{[]float64{0.000, 1.000, 3.000, 4.500, 7.000, 10.000}, []float64{0.500, 2.000, 2.500, 5.000, 8.000, 9.000}, 0.75, 0.21821789023599236},
		{[]float64{0.001, 0.299, -0.274, -0.891, -0.455, -0.992, 0.060, 1.340, -0.492, -0.620, 0.490, 0.357},
			[]float64{0.605, -0.430, 0.471, 1.195, -0.844, 0.042, -1.401, -0.790, -1.342}, 0.29580555555555554, 0.46638926102354256},
	} {
		near(t, "W1", drift.Wasserstein(c.u, c.v), c.w1, tol)
		near(t, "W1/std", drift.NormedWasserstein(c.u, c.v), c.normed, tol)
		near(t, "W1 symmetric", drift.Wasserstein(c.v, c.u), c.w1, tol)
	}
	for _, c := range loadScipy(t).Wasserstein {
		near(t, "W1", drift.Wasserstein(c.U, c.V), c.W1, tol)
		near(t, "W1/std", drift.NormedWasserstein(c.U, c.V), c.W1/math.Max(c.Std, 0.001), tol)
	}
	if w := drift.Wasserstein([]float64{1, math.NaN(), 2}, []float64{math.NaN(), 1, 2}); w != 0 {
		t.Fatalf("NaN must be left out: %v", w)
	}
	if w := drift.Wasserstein([]float64{math.NaN()}, []float64{1}); !math.IsNaN(w) {
		t.Fatalf("no values: %v", w)
	}
}

// Table A4 of the shared README.
func TestJensenShannonTableA4(t *testing.T) {
	for _, c := range []struct {
		p, q   []float64
		e, two float64
	}{
		{[]float64{.10, .20, .30, .25, .15}, []float64{.15, .25, .25, .20, .15}, 0.080239610230358555, 0.096377593919974136},
		{[]float64{40, 30, 20, 10, 0}, []float64{25, 25, 25, 15, 10}, 0.22008255969871782, 0.26434609423721156},
	} {
		near(t, "JS base e", drift.JensenShannon(c.p, c.q, 0), c.e, tol)
		near(t, "JS base 2", drift.JensenShannon(c.p, c.q, 2), c.two, tol)
		near(t, "JS symmetric", drift.JensenShannon(c.q, c.p, 0), c.e, tol)
	}
	for _, c := range loadScipy(t).JS {
		if got := drift.JensenShannon(c.P, c.Q, 0); !(rel(got, c.E) <= tol || math.Abs(got-c.E) < 1e-15) {
			t.Errorf("JS(%v, %v) = %v, scipy %v", c.P, c.Q, got, c.E)
		}
		if got := drift.JensenShannon(c.P, c.Q, 2); !(rel(got, c.Two) <= tol || math.Abs(got-c.Two) < 1e-15) {
			t.Errorf("JS₂(%v, %v) = %v, scipy %v", c.P, c.Q, got, c.Two)
		}
	}
}

// Table A5 of the shared README.
func TestPSITableA5(t *testing.T) {
	ref := []float64{100, 100, 100, 100, 100, 100, 100, 100, 100, 100}
	cur := []float64{80, 90, 95, 100, 105, 110, 105, 100, 115, 100}
	near(t, "PSI P-1", drift.PSI(ref, cur), 0.0093103752301651604, tol)
	near(t, "PSI P-2", drift.PSI([]float64{250, 250, 250, 250}, []float64{400, 300, 300, 0}), 2.0439617981792431, tol)
	near(t, "PSI symmetric", drift.PSI(cur, ref), 0.0093103752301651604, tol)
}
