package gbdt

import (
	"math"
	"testing"
)

func TestPackRoundsAndUnpacks(t *testing.T) {
	qz := &quantizer{gScale: 1, hScale: 1}
	for _, c := range []struct {
		g, h         float64
		wantG, wantH float64
	}{
		{0, 0, 0, 1}, // a row always keeps one hessian step
		{2.4, 3.6, 2, 4},
		{-2.4, 0.2, -2, 1},
		{-2.6, 7, -3, 7},
		{-0.5, 1, 0, 1}, // halves round up
		{1 << 23, 1 << 20, 1 << 23, 1 << 20},
		{-(1 << 23), 1, -(1 << 23), 1},
	} {
		g, h := qz.unpack(qz.pack(c.g, c.h))
		if g != c.wantG || h != c.wantH {
			t.Errorf("pack(%v, %v) unpacks to (%v, %v), want (%v, %v)", c.g, c.h, g, h, c.wantG, c.wantH)
		}
	}
	// Sums of packed values are the packed sums, negative gradients included.
	s := qz.pack(-5, 3) + qz.pack(2, 4) + qz.pack(-1, 1)
	if g, h := qz.unpack(s); g != -4 || h != 8 {
		t.Errorf("packed sum unpacks to (%v, %v), want (-4, 8)", g, h)
	}
}

func TestScalesLeaveRoomForEveryRow(t *testing.T) {
	const n = 800_000
	qz := &quantizer{}
	qz.setScales(n, 1, 0, 0.25)
	top := qz.pack(1/qz.gScale, 0.25/qz.hScale)
	var sum int64
	for range n {
		sum += top
	}
	if g, h := qz.unpack(sum); math.Abs(g-n) > 1e-6*n || math.Abs(h-0.25*n) > 1e-6*n {
		t.Errorf("sum of %d maximal rows unpacks to (%v, %v), want (%v, %v)", n, g, h, float64(n), 0.25*n)
	}
}
