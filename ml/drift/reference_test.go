package drift_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/drift"
	"github.com/flywheel-ml/flywheel/ml/profile"
)

// TestBinsFollowProfileBin: a window is binned exactly as profile.Profile.Bin bins it,
// values on the edges included, missing values counted apart.
func TestBinsFollowProfileBin(t *testing.T) {
	p := profileOf(t, 5000)
	refs, err := drift.References(p)
	if err != nil {
		t.Fatal(err)
	}
	x := refs[0]
	edges := p.Features[0].Numeric.Edges
	window := []float64{math.Inf(-1), math.Inf(1), math.NaN(), -1e300, 1e300}
	for _, e := range edges {
		window = append(window, e, math.Nextafter(e, math.Inf(1)), math.Nextafter(e, math.Inf(-1)))
	}
	rng := rand.New(rand.NewPCG(1, 1))
	window = append(window, normals(rng, 1000, 0, 1.5)...)
	counts, missing := x.Histogram(window)
	want := make([]float64, len(edges)+1)
	for _, v := range window {
		b, err := p.Bin("x", v)
		if err != nil {
			t.Fatal(err)
		}
		if b >= 0 {
			want[b]++
		}
	}
	if missing != 1 || len(counts) != len(want) {
		t.Fatalf("missing %d, %d bins", missing, len(counts))
	}
	for i := range want {
		if counts[i] != want[i] {
			t.Fatalf("bin %d: %v, profile.Bin %v", i, counts[i], want[i])
		}
	}
	// The profile's own counts are the reference bins.
	for i, c := range x.Bins() {
		if c != float64(p.Features[0].Numeric.Counts[i]) {
			t.Fatalf("reference bins %v, profile counts %v", x.Bins(), p.Features[0].Numeric.Counts)
		}
	}
}

func TestCategoricalBins(t *testing.T) {
	ft := profile.Feature{Name: "c", Kind: drift.Categorical, Rows: 1000, Missing: 0.2,
		Categories: map[string]float64{"7": 0.25, "-3": 0.5, "12": 0.25}}
	r, err := drift.NewReference(ft, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Bins(); len(got) != 4 || got[0] != 400 || got[1] != 200 || got[2] != 200 || got[3] != 0 {
		t.Fatalf("reference bins (codes ascending, then unseen): %v", got)
	}
	counts, missing := r.Histogram([]float64{-3, 7, 7, 12, 99, math.NaN(), 7.9})
	if missing != 1 || counts[0] != 1 || counts[1] != 3 || counts[2] != 1 || counts[3] != 1 {
		t.Fatalf("codes are int64(v); unseen codes share the last bin: %v %d", counts, missing)
	}
	s, err := r.Score(drift.MethodChiSquare, []float64{-3, -3, 7, 12, 12, math.NaN()})
	if err != nil || s.N != 5 || s.Missing != 1 || !(s.P > 0 && s.P <= 1) {
		t.Fatalf("%+v %v", s, err)
	}
	if _, err := r.Score(drift.MethodKS, []float64{1}); !errors.Is(err, drift.ErrKind) {
		t.Fatalf("KS on a categorical: %v", err)
	}
	if _, err := r.Score(drift.MethodPSI, []float64{math.NaN()}); !errors.Is(err, drift.ErrNoValues) {
		t.Fatalf("all-missing window: %v", err)
	}
	if _, err := drift.NewReference(profile.Feature{Name: "c", Kind: drift.Categorical, Categories: map[string]float64{"a": 1}}, nil); err == nil {
		t.Fatal("a non-integer category code must be refused")
	}
}

// TestScoreMatchesThePlainFunctions: Reference.Score is the package's statistics applied to
// the window against the sample or the profile's bins, with missing values left out.
func TestScoreMatchesThePlainFunctions(t *testing.T) {
	p := profileOf(t, 20000)
	refs, _ := drift.References(p)
	x := refs[0]
	sample := make([]float64, len(p.Sample.Rows))
	for i, row := range p.Sample.Rows {
		sample[i] = row[0]
	}
	rng := rand.New(rand.NewPCG(2, 2))
	w := append(normals(rng, 700, 0.1, 1), math.NaN(), math.NaN())
	ks, _ := drift.KSTwoSample(w, sample, drift.KSAuto)
	s, err := x.Score(drift.MethodKS, w)
	if err != nil || s.Statistic != ks.D || s.P != ks.P || s.N != 700 || s.Missing != 2 {
		t.Fatalf("KS score %+v, KSTwoSample %+v (%v)", s, ks, err)
	}
	if fast, _ := x.Statistic(drift.MethodKS, w); fast.Statistic != ks.D || !math.IsNaN(fast.P) {
		t.Fatalf("Statistic %+v", fast)
	}
	if s, _ := x.Score(drift.MethodWasserstein, w); s.Statistic != drift.NormedWasserstein(sample, w) {
		t.Fatalf("Wasserstein score %v", s.Statistic)
	}
	counts, _ := x.Histogram(w)
	for _, c := range []struct {
		m    drift.Method
		want float64
	}{
		{drift.MethodPSI, drift.PSI(x.Bins(), counts)},
		{drift.MethodJensenShannon, drift.JensenShannon(x.Bins(), counts, 0)},
		{drift.MethodLInf, drift.LInf(x.Bins(), counts)},
	} {
		if s, _ := x.Score(c.m, w); s.Statistic != c.want || s.N != 700 || s.Missing != 2 {
			t.Fatalf("%s score %+v, want %v", c.m, s, c.want)
		}
	}
	chi, _ := drift.ChiSquareContingency([][]float64{x.Bins(), counts}, true)
	if s, _ := x.Score(drift.MethodChiSquare, w); s.Statistic != chi.Statistic || s.P != chi.P {
		t.Fatalf("chi-square score %+v, want %+v", s, chi)
	}
	if _, err := drift.ParseMethod("kolmogorov"); !errors.Is(err, drift.ErrMethod) {
		t.Fatal(err)
	}
}
