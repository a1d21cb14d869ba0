// Package forest is a generic ensemble of decision trees for serving models trained
// elsewhere (LightGBM, XGBoost): flat node arrays, no allocation per row, the split and
// missing-value rules of each trainer reproduced exactly, K outputs, a base score per output
// and an output transform.
//
// The Model is plain JSON (exported fields) and Validate makes any decoded model safe to
// score: every index in range, children after their parent inside their tree (so walks
// terminate), counts consistent.
package forest

import (
	"errors"
	"fmt"
	"math"
)

// Split kinds: how a split node compares a value.
const (
	// NumLE is LightGBM's numeric split: x <= threshold (float64) goes left, with the
	// node's missing type deciding NaN and zero (see Missing*).
	NumLE uint8 = 0
	// NumLT32 is XGBoost's: float32(x) < float32(threshold) goes left; NaN takes the
	// default direction.
	NumLT32 uint8 = 1
	// CatLeft is LightGBM's categorical split: an integer code in the node's bitset goes
	// left; NaN, negative codes and codes outside the bitset go right.
	CatLeft uint8 = 2
	// CatRight is XGBoost's: NaN takes the default direction; a code in the bitset goes
	// right; negative codes, codes ≥ 2²⁴ and codes outside the bitset go left.
	CatRight uint8 = 3
)

// Missing types of NumLE splits (LightGBM's): with MissingNone and MissingZero a NaN is
// first replaced by 0; with MissingZero a value with |x| <= 1e-35 (float32) takes the default
// direction; with MissingNaN a NaN takes the default direction.
const (
	MissingNone uint8 = 0
	MissingZero uint8 = 1
	MissingNaN  uint8 = 2
)

// Output transforms.
const (
	Identity = "identity"
	Sigmoid  = "sigmoid" // 1/(1+exp(-SigmoidScale·x)), per output
	Softmax  = "softmax" // across the K outputs
	Exp      = "exp"     // poisson, gamma, tweedie
)

// zeroThreshold is LightGBM's kZeroThreshold (1e-35f) as a double.
var zeroThreshold = float64(float32(1e-35))

// Node is one node of a tree. A leaf has Feature -1 and its value in Value.
type Node struct {
	Feature     int32   `json:"feature"`
	Kind        uint8   `json:"kind,omitempty"`
	Missing     uint8   `json:"missing,omitempty"`
	DefaultLeft bool    `json:"default_left,omitempty"`
	Left        int32   `json:"left,omitempty"`  // absolute index into Model.Nodes
	Right       int32   `json:"right,omitempty"` // absolute index into Model.Nodes
	Threshold   float64 `json:"threshold,omitempty"`
	CatStart    int32   `json:"cat_start,omitempty"` // categorical: bitset words CatBits[CatStart:CatStart+CatLen]
	CatLen      int32   `json:"cat_len,omitempty"`
	Value       float64 `json:"value,omitempty"` // leaf value
}

// Model is a tree ensemble. Tree t is Nodes[Roots[t]:Roots[t+1]] (the last ends at
// len(Nodes)), rooted at its first node, and adds to output TreeOutput[t].
type Model struct {
	NumFeatures   int       `json:"num_features"`
	NumOutputs    int       `json:"num_outputs"`
	Nodes         []Node    `json:"nodes"`
	Roots         []int32   `json:"roots"`
	TreeOutput    []int32   `json:"tree_output"`
	CatBits       []uint32  `json:"cat_bits,omitempty"`
	BaseScore     []float64 `json:"base_score"` // margin added to each output
	Transform     string    `json:"transform"`
	SigmoidScale  float64   `json:"sigmoid_scale,omitempty"`
	AverageOutput bool      `json:"average_output,omitempty"` // random forest: each output's tree sum divided by its tree count

	counts []float64 // trees per output, for AverageOutput (filled by Validate/AppendTree)
}

// Limits that Validate and the parsers enforce.
const (
	MaxNodes   = 1 << 26
	MaxTrees   = 1 << 20
	MaxOutputs = 1 << 12
	MaxCatLen  = 1 << 16 // words of one categorical bitset (codes < 2²¹)
)

// NumClasses is the number of outputs (1 for binary and regression).
func (m *Model) NumClasses() int { return m.NumOutputs }

// New returns an empty model to which trees are appended.
func New(numFeatures, numOutputs int, transform string) *Model {
	return &Model{NumFeatures: numFeatures, NumOutputs: numOutputs, Transform: transform,
		BaseScore: make([]float64, numOutputs), SigmoidScale: 1}
}

// TreeNode is a node of a tree being appended: Left/Right index the slice given to
// AppendTree (a leaf has Feature -1); CatBits is its own bitset.
type TreeNode struct {
	Node
	CatBits []uint32
}

// AppendTree lays out a tree given as nodes with local child indices, rooted at nodes[0],
// in depth-first preorder (children after parents), and adds it to output out. It refuses
// indices out of range, cycles and nodes reached twice. Unreachable nodes are dropped.
func (m *Model) AppendTree(nodes []TreeNode, out int) error {
	if len(nodes) == 0 {
		return errors.New("tree has no nodes")
	}
	if out < 0 || out >= m.NumOutputs {
		return fmt.Errorf("tree output %d is not in [0, %d)", out, m.NumOutputs)
	}
	if len(m.Roots) >= MaxTrees || len(m.Nodes)+len(nodes) > MaxNodes {
		return fmt.Errorf("more than %d trees or %d nodes", MaxTrees, MaxNodes)
	}
	base := len(m.Nodes)
	seen := make([]bool, len(nodes))
	type item struct {
		local, parent int32
		left          bool
	}
	stack := []item{{0, -1, false}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.local < 0 || int(it.local) >= len(nodes) {
			return fmt.Errorf("child index %d out of range (tree has %d nodes)", it.local, len(nodes))
		}
		if seen[it.local] {
			return fmt.Errorf("node %d is reached twice (cycle or shared child)", it.local)
		}
		seen[it.local] = true
		idx := int32(len(m.Nodes))
		if it.parent >= 0 {
			if it.left {
				m.Nodes[it.parent].Left = idx
			} else {
				m.Nodes[it.parent].Right = idx
			}
		}
		tn := nodes[it.local]
		n := tn.Node
		if n.Feature >= 0 && (n.Kind == CatLeft || n.Kind == CatRight) {
			if len(tn.CatBits) > MaxCatLen {
				return fmt.Errorf("categorical bitset of %d words, more than %d", len(tn.CatBits), MaxCatLen)
			}
			n.CatStart, n.CatLen = int32(len(m.CatBits)), int32(len(tn.CatBits))
			m.CatBits = append(m.CatBits, tn.CatBits...)
		}
		m.Nodes = append(m.Nodes, n)
		if n.Feature >= 0 {
			// Right pushed first so the left subtree comes next (preorder).
			stack = append(stack, item{n.Right, idx, false}, item{n.Left, idx, true})
		}
	}
	m.Roots = append(m.Roots, int32(base))
	m.TreeOutput = append(m.TreeOutput, int32(out))
	if len(m.counts) != m.NumOutputs {
		m.counts = make([]float64, m.NumOutputs)
		for _, o := range m.TreeOutput[:len(m.TreeOutput)-1] {
			m.counts[o]++
		}
	}
	m.counts[out]++
	return nil
}

// Validate checks the model can be scored safely with rows of numFeatures values; errors
// name the problem.
func (m *Model) Validate(numFeatures int) error {
	if m.NumFeatures != numFeatures {
		return fmt.Errorf("forest: model reads %d features, signature has %d", m.NumFeatures, numFeatures)
	}
	if m.NumOutputs < 1 || m.NumOutputs > MaxOutputs {
		return fmt.Errorf("forest: %d outputs (want 1 to %d)", m.NumOutputs, MaxOutputs)
	}
	if len(m.BaseScore) != m.NumOutputs {
		return fmt.Errorf("forest: %d base scores for %d outputs", len(m.BaseScore), m.NumOutputs)
	}
	for k, b := range m.BaseScore {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return fmt.Errorf("forest: base score %d is %v", k, b)
		}
	}
	switch m.Transform {
	case Identity, Exp:
	case Sigmoid:
		if !(m.SigmoidScale > 0) || math.IsInf(m.SigmoidScale, 0) {
			return fmt.Errorf("forest: sigmoid scale %v is not positive and finite", m.SigmoidScale)
		}
	case Softmax:
		if m.NumOutputs < 2 {
			return errors.New("forest: softmax with one output")
		}
	default:
		return fmt.Errorf("forest: unknown transform %q", m.Transform)
	}
	if len(m.Nodes) > MaxNodes || len(m.Roots) > MaxTrees {
		return fmt.Errorf("forest: %d nodes and %d trees, more than %d or %d", len(m.Nodes), len(m.Roots), MaxNodes, MaxTrees)
	}
	if len(m.TreeOutput) != len(m.Roots) {
		return fmt.Errorf("forest: %d tree outputs for %d trees", len(m.TreeOutput), len(m.Roots))
	}
	if len(m.Roots) == 0 && len(m.Nodes) > 0 {
		return errors.New("forest: nodes without trees")
	}
	counts := make([]float64, m.NumOutputs)
	for t, r := range m.Roots {
		end := int32(len(m.Nodes))
		if t+1 < len(m.Roots) {
			end = m.Roots[t+1]
		}
		if (t == 0 && r != 0) || r >= end {
			return fmt.Errorf("forest: tree %d starts at node %d, not after the previous tree and before %d", t, r, end)
		}
		if o := m.TreeOutput[t]; o < 0 || int(o) >= m.NumOutputs {
			return fmt.Errorf("forest: tree %d adds to output %d of %d", t, o, m.NumOutputs)
		}
		counts[m.TreeOutput[t]]++
		for i := r; i < end; i++ {
			n := &m.Nodes[i]
			if n.Feature < 0 {
				if n.Feature != -1 {
					return fmt.Errorf("forest: tree %d node %d has feature %d", t, i, n.Feature)
				}
				if math.IsNaN(n.Value) || math.IsInf(n.Value, 0) {
					return fmt.Errorf("forest: tree %d leaf %d has value %v", t, i, n.Value)
				}
				continue
			}
			switch {
			case int(n.Feature) >= numFeatures:
				return fmt.Errorf("forest: tree %d node %d splits on feature %d of %d", t, i, n.Feature, numFeatures)
			case n.Left <= i || n.Left >= end || n.Right <= i || n.Right >= end:
				return fmt.Errorf("forest: tree %d node %d has children %d and %d, not after it inside its tree [%d, %d)", t, i, n.Left, n.Right, r, end)
			case n.Kind > CatRight:
				return fmt.Errorf("forest: tree %d node %d has split kind %d", t, i, n.Kind)
			case n.Missing > MissingNaN:
				return fmt.Errorf("forest: tree %d node %d has missing type %d", t, i, n.Missing)
			case math.IsNaN(n.Threshold):
				return fmt.Errorf("forest: tree %d node %d has threshold NaN", t, i)
			case (n.Kind == CatLeft || n.Kind == CatRight) &&
				(n.CatStart < 0 || n.CatLen < 0 || n.CatLen > MaxCatLen || int(n.CatStart)+int(n.CatLen) > len(m.CatBits)):
				return fmt.Errorf("forest: tree %d node %d has bitset [%d, +%d) outside the %d words", t, i, n.CatStart, n.CatLen, len(m.CatBits))
			}
		}
	}
	m.counts = counts
	return nil
}

// CategoricalFeatures reports which features have categorical splits.
func (m *Model) CategoricalFeatures() []bool {
	c := make([]bool, m.NumFeatures)
	for i := range m.Nodes {
		n := &m.Nodes[i]
		if n.Feature >= 0 && (n.Kind == CatLeft || n.Kind == CatRight) && int(n.Feature) < len(c) {
			c[n.Feature] = true
		}
	}
	return c
}

func (m *Model) inBits(n *Node, code int) bool {
	w := code >> 5
	if w >= int(n.CatLen) {
		return false
	}
	return m.CatBits[int(n.CatStart)+w]>>(uint(code)&31)&1 != 0
}

// leaf walks tree from root to its leaf value.
func (m *Model) leaf(root int32, row []float64) float64 {
	nodes := m.Nodes
	i := root
	for {
		n := &nodes[i]
		if n.Feature < 0 {
			return n.Value
		}
		x := row[n.Feature]
		var left bool
		switch n.Kind {
		case NumLE:
			if x != x {
				if n.Missing == MissingNaN {
					left = n.DefaultLeft
					break
				}
				x = 0
			}
			if n.Missing == MissingZero && x >= -zeroThreshold && x <= zeroThreshold {
				left = n.DefaultLeft
			} else {
				left = x <= n.Threshold
			}
		case NumLT32:
			if x != x {
				left = n.DefaultLeft
			} else {
				left = float32(x) < float32(n.Threshold)
			}
		case CatLeft:
			// LightGBM: NaN and negative codes go right; codes are truncated to int.
			left = !(x != x) && x > -1 && x < 1<<31 && m.inBits(n, int(x))
		case CatRight:
			if x != x {
				left = n.DefaultLeft
				break
			}
			f := float32(x)
			if f < 0 || f >= 1<<24 {
				left = true
			} else {
				left = !m.inBits(n, int(f))
			}
		}
		if left {
			i = n.Left
		} else {
			i = n.Right
		}
	}
}

// PredictRaw writes the K margins (base score plus tree sums, averaged for random forests)
// of row into out, which must hold NumOutputs values.
func (m *Model) PredictRaw(row, out []float64) {
	out = out[:m.NumOutputs]
	for k := range out {
		out[k] = 0
	}
	for t, r := range m.Roots {
		out[m.TreeOutput[t]] += m.leaf(r, row)
	}
	if m.AverageOutput {
		for k := range out {
			var c float64
			if len(m.counts) == m.NumOutputs {
				c = m.counts[k]
			} else { // not validated: count without caching (no writes while scoring)
				for _, o := range m.TreeOutput {
					if int(o) == k {
						c++
					}
				}
			}
			if c > 0 {
				out[k] /= c
			}
		}
	}
	for k := range out {
		out[k] += m.BaseScore[k]
	}
}

// PredictInto writes the K transformed outputs of row into out (len ≥ NumOutputs):
// probabilities for sigmoid and softmax models, values for the others.
func (m *Model) PredictInto(row, out []float64) {
	m.PredictRaw(row, out)
	out = out[:m.NumOutputs]
	switch m.Transform {
	case Sigmoid:
		for k, v := range out {
			out[k] = 1 / (1 + math.Exp(-m.SigmoidScale*v))
		}
	case Exp:
		for k, v := range out {
			out[k] = math.Exp(v)
		}
	case Softmax:
		mx := math.Inf(-1)
		for _, v := range out {
			mx = max(mx, v)
		}
		s := 0.0
		for k, v := range out {
			out[k] = math.Exp(v - mx)
			s += out[k]
		}
		for k := range out {
			out[k] /= s
		}
	}
}

// Predict returns the first transformed output: the probability of a binary model, the
// value of a regression, the probability of class 0 of a multiclass model.
func (m *Model) Predict(row []float64) float64 {
	if m.NumOutputs == 1 {
		var out [1]float64
		m.PredictInto(row, out[:])
		return out[0]
	}
	var buf [32]float64
	out := buf[:]
	if m.NumOutputs > len(buf) {
		out = make([]float64, m.NumOutputs)
	}
	m.PredictInto(row, out)
	return out[0]
}
