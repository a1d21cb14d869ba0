package forest

import (
	"math"
	"math/rand/v2"
	"testing"
)

// lt32Threshold(t) is the boundary of {x : float32(x) >= t}: T rounds below t and the next
// float64 up rounds to t or above.
func TestLT32Threshold(t *testing.T) {
	check := func(t32 float32) {
		T := lt32Threshold(t32)
		if !(float32(T) < t32) || !(float32(math.Nextafter(T, math.Inf(1))) >= t32) {
			t.Fatalf("threshold %v: T = %v", t32, T)
		}
	}
	for _, v := range []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.1, 1.5, 1 << 24, math.SmallestNonzeroFloat32,
		-math.SmallestNonzeroFloat32, math.MaxFloat32, -math.MaxFloat32, float32(math.Inf(1)), 1e-38, -1e-38} {
		check(v)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1_000_000 {
		if v := math.Float32frombits(rng.Uint32()); !math.IsNaN(float64(v)) && !math.IsInf(float64(v), -1) {
			check(v)
		}
	}
}

// leThreshold(t): x > T exactly when LightGBM's x <= t (|x| <= 1e-35 read as 0) is false.
func TestLEThreshold(t *testing.T) {
	zt := zeroThreshold
	ts := []float64{0, math.Copysign(0, -1), zt, -zt, zt / 2, -zt / 2, math.Nextafter(zt, 0), math.Nextafter(-zt, 0),
		math.Nextafter(zt, 1), math.Nextafter(-zt, -1), 1e-300, -1e-300, 1, -1}
	for _, th := range ts {
		T := leThreshold(th)
		for _, x := range ts {
			for _, x := range []float64{x, math.Nextafter(x, 1), math.Nextafter(x, -1)} {
				z := x
				if math.Abs(z) <= zt {
					z = 0
				}
				if (x > T) != !(z <= th) {
					t.Errorf("t=%v x=%v: x > T=%v is %v, LightGBM goes right: %v", th, x, T, x > T, !(z <= th))
				}
			}
		}
	}
}
