package drift_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/drift"
	"github.com/flywheel-ml/flywheel/ml/profile"
)

// BenchmarkWindow is the monitor's per-(model, feature) window step (services/monitor/detect
// calls Calibrator.Test per feature): bin the window's values with the profile's edges or
// categories and compute the statistic, the threshold calibrated at that size already cached.
// values/s is feature values folded per second on one core. cmd/driftbench measures the
// whole window path (20 features, Benjamini–Hochberg, decoding the logged JSON).
func BenchmarkWindow(b *testing.B) {
	const rows = 20000
	rng := rand.New(rand.NewPCG(4, 4))
	f := &dataset.Frame{Names: []string{"x", "c"}, Kinds: []dataset.Kind{dataset.Numeric, dataset.Categorical}}
	x, c := normals(rng, rows, 0, 1), make([]float64, rows)
	for i := range c {
		c[i] = float64(rng.IntN(5))
	}
	f.Cols = [][]float64{x, c}
	p, err := profile.Build(f, make([]float64, rows), profile.Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	refs, _ := drift.References(p)
	cal, _ := drift.NewCalibrator(refs, drift.CalibrationOptions{Seed: 1})
	for _, tc := range []struct {
		feature string
		m       drift.Method
	}{{"x", drift.MethodPSI}, {"c", drift.MethodLInf}} {
		for _, n := range []int{1000, 10000} {
			// fresh windows, 200,000 values in all, taken in turn: one window scored again and
			// again would let the branch predictor learn its values
			wins := make([][]float64, max(1, 200000/n))
			for k := range wins {
				wins[k] = normals(rng, n, 0, 1)
				if tc.feature == "c" {
					for i := range wins[k] {
						wins[k][i] = float64(rng.IntN(5))
					}
				}
			}
			b.Run(fmt.Sprintf("%s/n=%d", tc.m, n), func(b *testing.B) {
				if _, err := cal.Test(tc.feature, tc.m, wins[0]); err != nil { // calibrate outside the timing
					b.Fatal(err)
				}
				b.ReportAllocs()
				k := 0
				for b.Loop() {
					if _, err := cal.Test(tc.feature, tc.m, wins[k]); err != nil {
						b.Fatal(err)
					}
					k = (k + 1) % len(wins)
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
			})
		}
	}
}
