package drift_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/drift"
	"github.com/flywheel-ml/flywheel/ml/profile"
)

func TestBenjaminiHochberg(t *testing.T) {
	// m = 10 (the NaN counts), q = 0.05: thresholds k·0.005; sorted p 0.001, 0.004, 0.01,
	// 0.019, 0.03, …: the largest k with p₍ₖ₎ ≤ k·q/m is 4, so the four smallest go.
	p := []float64{0.01, 0.001, 0.5, 0.019, 0.9, 0.004, 0.03, 0.6, 0.7, math.NaN()}
	got := drift.BenjaminiHochberg(p, 0.05)
	want := []bool{true, true, false, true, false, true, false, false, false, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("rejected %v, want %v", got, want)
		}
	}
	adj := drift.AdjustBH(p)
	if math.Abs(adj[1]-0.01) > 1e-15 || math.Abs(adj[3]-0.0475) > 1e-15 || !math.IsNaN(adj[9]) || adj[4] > 1 {
		t.Fatalf("adjusted %v", adj)
	}
	if r := drift.BenjaminiHochberg([]float64{0.02, 0.03}, 0.01); r[0] || r[1] {
		t.Fatal("nothing below q")
	}
	if len(drift.BenjaminiHochberg(nil, 0.05)) != 0 {
		t.Fatal("empty")
	}
}

// TestModelVerdict: 20 numeric features, PSI with calibrated p-values and BH at q = 1 %:
// stationary windows give a model-level drift verdict in ≤ 2 % of 300 windows, and a 0.25σ
// shift in one feature is found (and only that feature) in most windows at n = 1,000.
func TestModelVerdict(t *testing.T) {
	const features, rows, n, windows = 20, 50000, 1000, 300
	rng := rand.New(rand.NewPCG(8, 8))
	f := &dataset.Frame{}
	for j := range features {
		f.Names = append(f.Names, string(rune('a'+j)))
		f.Kinds = append(f.Kinds, dataset.Numeric)
		f.Cols = append(f.Cols, normals(rng, rows, 0, 1))
	}
	p, err := profile.Build(f, make([]float64, rows), profile.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	refs, _ := drift.References(p)
	c, _ := drift.NewCalibrator(refs, drift.CalibrationOptions{Seed: 3, Resamples: drift.ResamplesFor(features, 0.01)})
	var falseVerdicts, found, wrong int
	for range windows {
		for _, shift := range []float64{0, 0.25} {
			ps := make([]float64, features)
			for j := range features {
				mu := 0.0
				if j == 7 {
					mu = shift
				}
				r, err := c.Test(f.Names[j], drift.MethodPSI, normals(rng, n, mu, 1))
				if err != nil {
					t.Fatal(err)
				}
				ps[j] = r.PValue
			}
			rej := drift.BenjaminiHochberg(ps, 0.01)
			any := false
			for j, r := range rej {
				any = any || r
				if r && j != 7 && shift > 0 {
					wrong++
				}
			}
			if shift == 0 && any {
				falseVerdicts++
			}
			if shift > 0 && rej[7] {
				found++
			}
		}
	}
	t.Logf("20 features, PSI, BH q=1%%, n=%d: %d/%d stationary windows with a verdict; shifted feature found in %d/%d, other features rejected %d times",
		n, falseVerdicts, windows, found, windows, wrong)
	if float64(falseVerdicts)/windows > 0.02 || float64(found)/windows < 0.8 {
		t.Fatalf("model verdicts: %d false of %d, %d found", falseVerdicts, windows, found)
	}
}

func TestPersistence(t *testing.T) {
	p, err := drift.NewPersistence(2, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	//           window: 1      2      3     4     5     6     7     8      9      10    11
	verdicts := []bool{true, false, true, true, true, true, true, false, false, true, true}
	want := []bool{false, false, true, false, false, true, false, false, false, false, true}
	for i, v := range verdicts {
		if got := p.Observe(v); got != want[i] {
			t.Fatalf("window %d: event %v, want %v (state %+v)", i+1, got, want[i], p)
		}
		// The state survives a checkpoint.
		raw, _ := json.Marshal(p)
		var back drift.Persistence
		if err := json.Unmarshal(raw, &back); err != nil || back.Validate() != nil {
			t.Fatal(err)
		}
		p = &back
	}
	for _, bad := range [][3]int{{0, 3, 0}, {4, 3, 0}, {1, 1, -1}} {
		if _, err := drift.NewPersistence(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("%v must not validate", bad)
		}
	}
}
