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
	q := make([]int64, n)
	for i := range q {
		q[i] = int64(rng.IntN(1000)-500)<<32 + int64(rng.IntN(1000))
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
		accumulate(h, d.bins, nf, 0, rows, q)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)*nf), "ns/update")
}
