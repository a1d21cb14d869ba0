package gbdt

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkAccumulate measures the histogram hot loop over every other row of a 200k × 20
// binned matrix (a typical child node), one goroutine.
func BenchmarkAccumulate(b *testing.B) {
	const n, nf = 200_000, 20
	rng := rand.New(rand.NewPCG(1, 2))
	d := &binnedData{numRows: n, numFeatures: nf, bins: make([]uint8, n*nf)}
	for i := range d.bins {
		d.bins[i] = uint8(rng.IntN(255))
	}
	gh := make([]gradPair, n)
	for i := range gh {
		gh[i] = gradPair{rng.NormFloat64(), rng.Float64()}
	}
	var rows []int32
	for i := 0; i < n; i++ {
		if rng.IntN(2) == 0 {
			rows = append(rows, int32(i))
		}
	}
	h := make(histogram, nf)
	b.ResetTimer()
	for range b.N {
		clear(h)
		accumulate(h, d.bins, nf, 0, rows, gh)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)*nf), "ns/update")
}
