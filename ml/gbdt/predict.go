package gbdt

import (
	"fmt"
	"math"
	"runtime"
	"slices"

	"github.com/flywheel-ml/flywheel/ml/dataset"
)

// Predict scores one row of raw feature values in frame column order: the probability of
// the positive class for Binary, the value for Regression. Missing values are NaN (±Inf are
// treated as missing too); categorical features are their integer codes, and a code not seen
// in training (or a negative one) takes the missing-value direction of each split. row must
// hold NumFeatures values.
func (m *Model) Predict(row []float64) float64 {
	return m.output(m.PredictRaw(row))
}

// PredictRaw is the margin of a row: the base score plus every tree's leaf value (the
// log-odds for Binary).
func (m *Model) PredictRaw(row []float64) float64 {
	if m.fast != nil {
		if len(m.fast.categorical) == 0 {
			return m.fast.raw(m.BaseScore, row[:m.NumFeatures])
		}
		// Categorical values are read into a copy: row is the caller's.
		var buf [64]float64
		scratch := buf[:0]
		if m.NumFeatures > len(buf) {
			scratch = make([]float64, 0, m.NumFeatures)
		}
		return m.fast.raw(m.BaseScore, append(scratch, row[:m.NumFeatures]...))
	}
	return m.walkTrees(row)
}

// walkTrees is PredictRaw over the Trees as decoded, from the rules' definitions: models
// not validated score with it, and tests hold the compiled walk to it.
func (m *Model) walkTrees(row []float64) float64 {
	s := m.BaseScore
	for t := range m.Trees {
		// Validate guarantees that child indices increase, so the walk ends.
		nodes := m.Trees[t].Nodes
		i := int32(0)
		for nodes[i].Feature >= 0 {
			n := &nodes[i]
			if m.goesLeft(n, row[n.Feature]) {
				i = n.Left
			} else {
				i = n.Right
			}
		}
		s += nodes[i].Value
	}
	return s
}

func (m *Model) goesLeft(n *Node, v float64) bool {
	if isMissing(v) {
		return n.DefaultLeft
	}
	if !m.Features[n.Feature].Categorical {
		return v <= n.Threshold
	}
	return m.categoricalLeft(n, v)
}

func (m *Model) categoricalLeft(n *Node, v float64) bool {
	if v < 0 || v != math.Trunc(v) || v > math.MaxInt32 {
		return n.DefaultLeft
	}
	code := int32(v)
	if _, ok := slices.BinarySearch(n.Categories, code); ok {
		return true
	}
	if _, ok := slices.BinarySearch(m.Features[n.Feature].Categories, code); ok {
		return false
	}
	return n.DefaultLeft // unseen in training
}

func (m *Model) output(margin float64) float64 {
	if m.Objective == Binary {
		return sigmoid(margin)
	}
	return margin
}

// predictBlock is the number of rows scored together: walking every tree for a block of
// rows keeps each tree in cache while its nodes are reused.
const predictBlock = 256

// PredictFrame writes Predict of every row of f into out, on GOMAXPROCS goroutines. f must
// have the model's features in order and out one slot per row; it panics otherwise, as an
// out-of-range index would.
func (m *Model) PredictFrame(f *dataset.Frame, out []float64) {
	if len(f.Cols) != m.NumFeatures || len(out) != f.Rows() {
		panic(fmt.Sprintf("gbdt: PredictFrame of %d features and %d rows into %d slots, model has %d features",
			len(f.Cols), f.Rows(), len(out), m.NumFeatures))
	}
	n := len(out)
	parallelFor((n+predictBlock-1)/predictBlock, runtime.GOMAXPROCS(0), func(c int) {
		lo, hi := c*predictBlock, min(n, (c+1)*predictBlock)
		if m.fast != nil {
			row := make([]float64, m.NumFeatures)
			for r := lo; r < hi; r++ {
				out[r] = m.output(m.fast.raw(m.BaseScore, f.Row(r, row)))
			}
			return
		}
		block := out[lo:hi]
		for i := range block {
			block[i] = m.BaseScore
		}
		for t := range m.Trees {
			nodes := m.Trees[t].Nodes
			for k := range block {
				r, i := lo+k, int32(0)
				for nodes[i].Feature >= 0 {
					n := &nodes[i]
					if m.goesLeft(n, f.Cols[n.Feature][r]) {
						i = n.Left
					} else {
						i = n.Right
					}
				}
				block[k] += nodes[i].Value
			}
		}
		for i := range block {
			block[i] = m.output(block[i])
		}
	})
}
