package gbdt

import "math"

// quantizer maps each round's gradients and hessians to integers and packs them as
// g<<32 + h into one int64 per row (LightGBM's quantised training does the same). Adding
// packed values adds both parts at once and exactly: h ≥ 0, and the scales leave room for
// n rows, so Σh never carries into the upper half and Σg never overflows it.
//
// The steps are fine (about 11 bits for 800,000 rows, more for fewer), so split choices and
// leaf values match float sums to a few parts in ten thousand; and integer sums make
// histograms bit-identical however the rows are cut between workers.
type quantizer struct {
	gScale, hScale float64 // a quantised unit of gradient and of hessian
	q              []int64 // packed per row
}

func newQuantizer(n int) *quantizer { return &quantizer{q: make([]int64, n)} }

// levels is how many quantisation steps n rows leave for a value of at most `max` steps
// summed over all of them, capped so that one row's value stays comfortably in range.
func levels(n int, maxSum float64) float64 {
	return math.Floor(min(maxSum/float64(n), 1<<24))
}

// quantize packs gh for rows; it is run on chunks of rows by several goroutines after scales
// has set the scales.
func (qz *quantizer) quantize(rows []int32, gh []gradPair) {
	gs, hs := 1/qz.gScale, 1/qz.hScale
	for _, r := range rows {
		qz.q[r] = qz.pack(gh[r].G*gs, gh[r].H*hs)
	}
}

// pack rounds a gradient and a hessian, both in steps, to the nearest step and packs them.
func (qz *quantizer) pack(g, h float64) int64 {
	// At least one hessian step: a row never vanishes from a bin, so a bin's hessian sum is
	// positive exactly when it holds rows.
	// Conversion truncates toward zero; shifting by 2^31 first (|g| < 2^24 steps) makes it
	// round half up for negative g too, without a call to math.Floor.
	return (int64(g+(0.5+1<<31))-1<<31)<<32 + max(int64(h+0.5), 1)
}

// setScales chooses the steps from the largest |g| and the range of h among n rows. When
// every h is the same (squared error) it is the step, so hessian sums count rows exactly.
func (qz *quantizer) setScales(n int, maxAbsG, minH, maxH float64) {
	qz.gScale = max(maxAbsG, 1e-300) / levels(n, math.MaxInt32)
	if minH == maxH {
		qz.hScale = maxH
	} else {
		qz.hScale = max(maxH, 1e-300) / levels(n, math.MaxUint32)
	}
}

// unpack splits a packed sum into its dequantised gradient and hessian sums.
func (qz *quantizer) unpack(v int64) (g, h float64) {
	hq := int64(uint32(v))
	return float64((v-hq)>>32) * qz.gScale, float64(hq) * qz.hScale
}
