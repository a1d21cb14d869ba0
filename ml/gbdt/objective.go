package gbdt

import (
	"fmt"
	"math"
)

// objective is a loss: its gradient and hessian with respect to the margin, its value, and
// the margin to start from.
type objective interface {
	// gradients writes the gradient and hessian of rows' losses at their margins.
	gradients(rows []int32, margin, label []float64, gh []gradPair)
	// loss is the sum of rows' losses.
	loss(rows []int32, margin, label []float64) float64
	// base is the best constant margin for the labels of rows.
	base(rows []int32, label []float64) float64
	// output maps a margin to a prediction.
	output(margin float64) float64
}

// fixedRangeObjective is an objective whose gradients and hessians have known bounds, which
// computes quantised gradients in one pass.
type fixedRangeObjective interface {
	fixedRanges() (maxAbsG, minH, maxH float64)
	quantizedGradients(rows []int32, margin, label []float64, qz *quantizer)
	denseQuantizedGradients(lo, hi int, margin, label []float64, qz *quantizer)
}

func newObjective(name string) objective {
	if name == Binary {
		return logistic{}
	}
	return squaredError{}
}

// checkLabels rejects labels the objective cannot learn from.
func checkLabels(name string, label []float64) error {
	if name != Binary {
		return nil
	}
	pos := 0
	for i, y := range label {
		if y != 0 && y != 1 {
			return fmt.Errorf("gbdt: binary objective needs labels 0 or 1; row %d has %v", i, y)
		}
		pos += int(y)
	}
	if pos == 0 || pos == len(label) {
		return fmt.Errorf("gbdt: binary objective needs both classes; all %d labels are %d", len(label), min(pos, 1))
	}
	return nil
}

// logistic is the log loss of a binary label against sigmoid(margin).
type logistic struct{}

// minHessian keeps a leaf whose rows are all predicted with certainty from dividing by zero.
const minHessian = 1e-16

func (logistic) gradients(rows []int32, margin, label []float64, gh []gradPair) {
	for _, r := range rows {
		p := sigmoid(margin[r])
		gh[r] = gradPair{p - label[r], max(p*(1-p), minHessian)}
	}
}

// fixedRanges: p−y lies in (−1, 1) and p(1−p) in (0, 1/4], so the quantisation steps need no
// pass over the rows to find the ranges.
func (logistic) fixedRanges() (maxAbsG, minH, maxH float64) { return 1, 0, 0.25 }

// quantizedGradients is gradients fused with quantizer.quantize: one pass, no gradient array.
func (logistic) quantizedGradients(rows []int32, margin, label []float64, qz *quantizer) {
	gs, hs := 1/qz.gScale, 1/qz.hScale
	for _, r := range rows {
		qz.q[r] = logisticPacked(qz, margin[r], label[r], gs, hs)
	}
}

// denseQuantizedGradients is quantizedGradients for rows lo..hi-1 when every row trains: the
// loop is memory-bound, and reading no row index saves a sixth of its traffic.
func (logistic) denseQuantizedGradients(lo, hi int, margin, label []float64, qz *quantizer) {
	gs, hs := 1/qz.gScale, 1/qz.hScale
	q, label := qz.q[lo:hi], label[lo:hi]
	for i, m := range margin[lo:hi] {
		q[i] = logisticPacked(qz, m, label[i], gs, hs)
	}
}

func logisticPacked(qz *quantizer, margin, label, gs, hs float64) int64 {
	p := sigmoid(margin)
	h := p * (1 - p)
	if h < minHessian {
		h = minHessian
	}
	return qz.pack((p-label)*gs, h*hs)
}

func (logistic) loss(rows []int32, margin, label []float64) float64 {
	s := 0.0
	for _, r := range rows {
		m := margin[r]
		// log(1+e^m) − y·m, written so that e^x never overflows.
		s += max(m, 0) + math.Log1p(math.Exp(-math.Abs(m))) - label[r]*m
	}
	return s
}

func (logistic) base(rows []int32, label []float64) float64 {
	pos := 0.0
	for _, r := range rows {
		pos += label[r]
	}
	p := pos / float64(len(rows))
	p = min(max(p, 1e-12), 1-1e-12)
	return math.Log(p / (1 - p))
}

func (logistic) output(margin float64) float64 { return sigmoid(margin) }

func sigmoid(m float64) float64 { return 1 / (1 + math.Exp(-m)) }

// squaredError is (y − margin)², with gradient and hessian of half of it.
type squaredError struct{}

func (squaredError) gradients(rows []int32, margin, label []float64, gh []gradPair) {
	for _, r := range rows {
		gh[r] = gradPair{margin[r] - label[r], 1}
	}
}

func (squaredError) loss(rows []int32, margin, label []float64) float64 {
	s := 0.0
	for _, r := range rows {
		d := margin[r] - label[r]
		s += d * d
	}
	return s
}

func (squaredError) base(rows []int32, label []float64) float64 {
	s := 0.0
	for _, r := range rows {
		s += label[r]
	}
	return s / float64(len(rows))
}

func (squaredError) output(margin float64) float64 { return margin }
