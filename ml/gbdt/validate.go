package gbdt

import (
	"errors"
	"fmt"
	"math"
)

// ErrInvalidModel is wrapped by every error of Model.Validate.
var ErrInvalidModel = errors.New("invalid gbdt model")

// Validate checks that the model can be used on rows of numFeatures features: a known
// objective, finite numbers, every feature index in range, categorical splits only on
// categorical features, and trees whose children come after their parents and have exactly
// one parent each — so Predict on a valid model cannot index out of range or loop forever.
// A valid model is then compiled for fast scoring; change a model only before Validate.
func (m *Model) Validate(numFeatures int) error {
	m.fast = nil
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidModel, fmt.Sprintf(format, args...))
	}
	switch {
	case m.Objective != Binary && m.Objective != Regression:
		return bad("objective %q", m.Objective)
	case m.NumFeatures != numFeatures:
		return bad("model has %d features, want %d", m.NumFeatures, numFeatures)
	case len(m.Features) != m.NumFeatures:
		return bad("%d feature descriptions for %d features", len(m.Features), m.NumFeatures)
	case !finite(m.BaseScore):
		return bad("base score %v", m.BaseScore)
	case m.BestIteration < 0 || (m.BestIteration > 0 && m.BestIteration != len(m.Trees)):
		return bad("best iteration %d with %d trees", m.BestIteration, len(m.Trees))
	}
	for j, f := range m.Features {
		if !f.Categorical && len(f.Categories) > 0 {
			return bad("numeric feature %d has categories", j)
		}
		if !sortedCodes(f.Categories) {
			return bad("feature %d: categories are not distinct non-negative codes in ascending order", j)
		}
	}
	for t := range m.Trees {
		if err := m.validateTree(m.Trees[t].Nodes); err != nil {
			return bad("tree %d: %v", t, err)
		}
	}
	m.fast = compile(m)
	return nil
}

func (m *Model) validateTree(nodes []Node) error {
	if len(nodes) == 0 {
		return errors.New("no nodes")
	}
	if len(nodes) > math.MaxInt32 {
		return fmt.Errorf("%d nodes", len(nodes))
	}
	parents := make([]int, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		if n.IsLeaf() {
			if n.Feature != -1 || n.Left != 0 || n.Right != 0 || len(n.Categories) > 0 {
				return fmt.Errorf("node %d: a leaf (feature %d) with a split's fields", i, n.Feature)
			}
			if !finite(n.Value) {
				return fmt.Errorf("node %d: leaf value %v", i, n.Value)
			}
			continue
		}
		if int(n.Feature) >= m.NumFeatures {
			return fmt.Errorf("node %d: feature %d out of range [0, %d)", i, n.Feature, m.NumFeatures)
		}
		// Children strictly after the parent: no cycles, and every walk ends.
		for _, c := range []int32{n.Left, n.Right} {
			if int(c) <= i || int(c) >= len(nodes) {
				return fmt.Errorf("node %d: child %d not in (%d, %d)", i, c, i, len(nodes))
			}
			parents[c]++
		}
		if n.Left == n.Right {
			return fmt.Errorf("node %d: both children are node %d", i, n.Left)
		}
		if !finite(n.Gain) || n.Value != 0 {
			return fmt.Errorf("node %d: a split with gain %v and value %v", i, n.Gain, n.Value)
		}
		if m.Features[n.Feature].Categorical {
			if n.Threshold != 0 || !sortedCodes(n.Categories) {
				return fmt.Errorf("node %d: categorical split needs ascending distinct codes and no threshold", i)
			}
		} else if math.IsNaN(n.Threshold) || len(n.Categories) > 0 {
			return fmt.Errorf("node %d: numeric split with threshold %v and %d categories", i, n.Threshold, len(n.Categories))
		}
	}
	for i := 1; i < len(nodes); i++ {
		if parents[i] != 1 {
			return fmt.Errorf("node %d has %d parents, want 1", i, parents[i])
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func sortedCodes(c []int32) bool {
	for i := range c {
		if c[i] < 0 || i > 0 && c[i] <= c[i-1] {
			return false
		}
	}
	return true
}
