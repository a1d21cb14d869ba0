package drift

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/profile"
)

// TestCountStatIsThePublicStatistic: the null draws are computed from counts over the
// sample's distinct values; on the materialised samples they must be exactly what
// KSTwoSample and NormedWasserstein give the monitor's windows.
func TestCountStatIsThePublicStatistic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		values := make([]float64, 1+rng.IntN(40))
		for i := range values {
			values[i] = math.Round(rng.NormFloat64()*100) / 10
		}
		slices.Sort(values)
		values = slices.Compact(values)
		cw := make([]int64, len(values))
		cr := make([]int64, len(values))
		var w, r []float64
		for range 1 + rng.IntN(60) {
			a := rng.IntN(len(values))
			cw[a]++
			w = append(w, values[a])
		}
		for range 1 + rng.IntN(60) {
			a := rng.IntN(len(values))
			cr[a]++
			r = append(r, values[a])
		}
		ks, _ := KSTwoSample(w, r, KSAsymp)
		if got := countStat(MethodKS, values, cw, cr); got != ks.D {
			t.Fatalf("trial %d: KS from counts %v, KSTwoSample %v", trial, got, ks.D)
		}
		want := NormedWasserstein(r, w)
		if got := countStat(MethodWasserstein, values, cw, cr); math.Abs(got-want) > 1e-12*math.Max(1, want) {
			t.Fatalf("trial %d: W from counts %v, NormedWasserstein %v", trial, got, want)
		}
	}
}

// TestCalibrationSchemesCompared measures the false-alarm and detection rates of three ways
// to calibrate KS and normed Wasserstein against a 5,000-value reference sample (the
// README's table). It takes a few minutes: DRIFT_SCHEMES=1 go test -run SchemesCompared -v.
//
//	pooled: window and reference both resampled from the sample (what Calibrate does)
//	naive:  window resampled from the sample, compared with the sample itself
//	half:   the sample split in two at random, window resampled from one half and
//	        compared with the other
//	floor:  pooled with the effect-size floor of 0.04 (KS) or 0.06 (Wasserstein)
func TestCalibrationSchemesCompared(t *testing.T) {
	if os.Getenv("DRIFT_SCHEMES") == "" {
		t.Skip("set DRIFT_SCHEMES=1 (a few minutes)")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	const M, B = 5000, 1999
	for _, n := range []int{500, 1000, 10000} {
		for _, m := range []Method{MethodKS, MethodWasserstein} {
			refs, wins := 60, 60
			if n == 10000 {
				refs, wins = 100, 30
			}
			var fa, det, thr [4]float64
			var perRef, perRefFloor []float64
			floor := map[Method]float64{MethodKS: 0.04, MethodWasserstein: 0.06}[m]
			for ri := range refs {
				ref, _ := NewReference(profile.Feature{Name: "x", Kind: Numeric}, normalSample(rng, M, 0))
				nl, _ := Calibrate(ref, m, n, CalibrationOptions{Seed: uint64(ri)})
				naive, half := altThresholds(ref, m, n, B, rng)
				ths := [4]float64{nl.Threshold, naive, half, math.Max(nl.Threshold, floor)}
				f, ff := 0, 0
				for range wins {
					s, _ := ref.Statistic(m, normalSample(rng, n, 0))
					d, _ := ref.Statistic(m, normalSample(rng, n, 0.25))
					for k, th := range ths {
						if s.Statistic > th {
							fa[k]++
							if k == 0 {
								f++
							}
							if k == 3 {
								ff++
							}
						}
						if d.Statistic > th {
							det[k]++
						}
						thr[k] += th / float64(refs*wins)
					}
				}
				perRef = append(perRef, float64(f)/float64(wins))
				perRefFloor = append(perRefFloor, float64(ff)/float64(wins))
			}
			slices.Sort(perRef)
			slices.Sort(perRefFloor)
			N := float64(refs * wins)
			t.Logf("| %d | %s | %.2f%% / %.1f%% / %.4f | %.2f%% / %.1f%% / %.4f | %.2f%% / %.1f%% / %.4f | %.1f%% / %.1f%% | %.2f%% / %.1f%% / %.1f%% |",
				n, m, 100*fa[0]/N, 100*det[0]/N, thr[0], 100*fa[1]/N, 100*det[1]/N, thr[1], 100*fa[2]/N, 100*det[2]/N, thr[2],
				100*perRef[len(perRef)*9/10], 100*perRef[len(perRef)-1], 100*fa[3]/N, 100*det[3]/N, 100*perRefFloor[len(perRefFloor)-1])
		}
	}
}

func normalSample(rng *rand.Rand, n int, mu float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = mu + rng.NormFloat64()
	}
	return x
}

// altThresholds returns the (1−α) null quantiles of the naive and half-split schemes.
func altThresholds(r *Reference, m Method, n, B int, rng *rand.Rand) (naive, half float64) {
	values, atomOf := r.atoms()
	M := len(r.sample)
	cw := make([]int64, len(values))
	cr := make([]int64, len(values))
	whole := make([]int64, len(values))
	for _, a := range atomOf {
		whole[a]++
	}
	dn := make([]float64, B)
	dh := make([]float64, B)
	perm := make([]int, M)
	for i := range perm {
		perm[i] = i
	}
	for b := range B {
		clear(cw)
		for range n {
			cw[atomOf[rng.IntN(M)]]++
		}
		dn[b] = countStat(m, values, cw, whole)
		rng.Shuffle(M, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		h := M / 2
		clear(cw)
		clear(cr)
		for range n {
			cw[atomOf[perm[rng.IntN(h)]]]++
		}
		for _, p := range perm[h:] {
			cr[atomOf[p]]++
		}
		dh[b] = countStat(m, values, cw, cr)
	}
	q := func(d []float64) float64 {
		slices.Sort(d)
		return d[B-allowedAbove(DefaultAlpha, B)]
	}
	return q(dn), q(dh)
}
