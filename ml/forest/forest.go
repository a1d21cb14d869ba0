// Package forest is a generic ensemble of decision trees for serving models trained
// elsewhere (LightGBM, XGBoost): the split and missing-value rules of each trainer
// reproduced exactly, K outputs, a base score per output, an output transform, and — for
// XGBoost — its float32 arithmetic.
//
// The Model is plain JSON (exported fields, deterministic encoding). Validate makes any
// decoded model safe to score (every index in range, each left child right after its
// parent and each right child after the left subtree, so walks terminate) and compiles the
// nodes into a packed 16-byte layout that Predict walks without allocating. Validate
// writes to the model: call it (the parsers and artifact.Decode do) before the model is
// shared between goroutines; a validated model is then safe for concurrent scoring, and
// Check, which only reads, may run beside it. A model changed after Validate must be validated
// again: AppendTree drops the packed nodes (the model then scores with a slower walk over
// Nodes), edited fields are not noticed. A model never validated may not be safe to score.
package forest

import (
	"errors"
	"fmt"
	"math"
)

// Trainers a model can come from (Model.Trainer).
const (
	LightGBM = "lightgbm"
	XGBoost  = "xgboost"
)

// Split kinds: how a split node compares a value.
const (
	// NumLE is LightGBM's numeric split: x <= threshold (float64) goes left, after the
	// node's missing type has decided NaN and zero (see Missing*).
	NumLE uint8 = 0
	// NumLT32 is XGBoost's: float32(x) < float32(threshold) goes left; NaN takes the
	// default direction.
	NumLT32 uint8 = 1
	// CatLeft is LightGBM's categorical split: an integer code (x truncated) in the node's
	// bitset goes left; NaN, codes below 0 and codes outside the bitset go right.
	CatLeft uint8 = 2
	// CatRight is XGBoost's: NaN takes the default direction; a code (float32(x)
	// truncated) in the bitset goes right; negative codes, codes ≥ 2²⁴ and codes outside
	// the bitset go left.
	CatRight uint8 = 3
)

// Missing types of NumLE splits (LightGBM's). Whatever the type, a value with |x| <= 1e-35
// (LightGBM's kZeroThreshold, a float32) is read as 0, as LightGBM's prediction API drops
// such values from the row before walking the trees.
//
//   - MissingNone: NaN is read as 0.
//   - MissingZero: NaN is read as 0, and 0 takes the default direction.
//   - MissingNaN: NaN takes the default direction (0 is compared as a number).
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
	Left        int32   `json:"left,omitempty"`  // absolute index into Model.Nodes: always the next node
	Right       int32   `json:"right,omitempty"` // absolute index into Model.Nodes: after the left subtree
	Threshold   float64 `json:"threshold,omitempty"`
	CatStart    int32   `json:"cat_start,omitempty"` // categorical: bitset words CatBits[CatStart:CatStart+CatLen]
	CatLen      int32   `json:"cat_len,omitempty"`
	Value       float64 `json:"value,omitempty"` // leaf value
}

// Model is a tree ensemble. Tree t is Nodes[Roots[t]:Roots[t+1]] (the last ends at
// len(Nodes)), laid out in depth-first preorder from its root, and adds to output
// TreeOutput[t].
//
// Margins: with Float32 unset, output k is the float64 sum of its trees' leaves in tree
// order (divided by its tree count when AverageOutput), plus BaseScore[k] — LightGBM's
// arithmetic. With Float32 set, output k starts at float32(BaseScore[k]) and adds each
// tree's leaf in tree order in float32, and the transform is computed in float32 as
// XGBoost computes it; so both agree with their trainer to the last bit but for libm's
// rounding of exp.
type Model struct {
	Trainer       string    `json:"trainer,omitempty"` // LightGBM or XGBoost
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
	Float32       bool      `json:"float32,omitempty"`        // XGBoost's float32 arithmetic (see Model)
	// Categorical marks the inputs the trainer was told are categorical (integer codes),
	// whether or not a tree splits on them; empty when none are.
	Categorical []bool `json:"categorical,omitempty"`

	// Filled by Validate; nil until then and after AppendTree.
	packed []packedNode
	simple bool      // every split in packed is opNum
	counts []float64 // trees per output, for AverageOutput
}

// Limits that Validate and the parsers enforce.
const (
	MaxFeatures = 1 << 24
	MaxNodes    = 1 << 26
	MaxTrees    = 1 << 20
	MaxOutputs  = 1 << 12
	MaxCatLen   = 1 << 16 // words of one categorical bitset (codes < 2²¹)
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
// in depth-first preorder (each left child right after its parent), and adds it to output
// out. It refuses indices out of range, cycles and nodes reached twice, leaving the model
// as it was. Unreachable nodes are dropped. The model scores slowly until Validate is
// called again.
func (m *Model) AppendTree(nodes []TreeNode, out int) error {
	m.packed, m.simple, m.counts = nil, false, nil
	if len(nodes) == 0 {
		return errors.New("tree has no nodes")
	}
	if out < 0 || out >= m.NumOutputs {
		return fmt.Errorf("tree output %d is not in [0, %d)", out, m.NumOutputs)
	}
	if len(m.Roots) >= MaxTrees || len(m.Nodes)+len(nodes) > MaxNodes {
		return fmt.Errorf("more than %d trees or %d nodes", MaxTrees, MaxNodes)
	}
	start, cats := len(m.Nodes), len(m.CatBits)
	fail := func(format string, a ...any) error { // leave the model as it was
		m.Nodes, m.CatBits = m.Nodes[:start], m.CatBits[:cats]
		return fmt.Errorf(format, a...)
	}
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
			return fail("child index %d out of range (tree has %d nodes)", it.local, len(nodes))
		}
		if seen[it.local] {
			return fail("node %d is reached twice (cycle or shared child)", it.local)
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
		n.CatStart, n.CatLen = 0, 0
		if n.Feature < 0 {
			n = Node{Feature: -1, Value: n.Value}
		} else if n.Kind == CatLeft || n.Kind == CatRight {
			if len(tn.CatBits) > MaxCatLen {
				return fail("categorical bitset of %d words, more than %d", len(tn.CatBits), MaxCatLen)
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
	m.Roots = append(m.Roots, int32(start))
	m.TreeOutput = append(m.TreeOutput, int32(out))
	return nil
}

// Validate checks the model can be scored safely with rows of numFeatures values (Check)
// and prepares it for fast scoring, which writes to the model; errors name the problem.
func (m *Model) Validate(numFeatures int) error {
	m.packed, m.simple, m.counts = nil, false, nil
	counts, err := m.check(numFeatures)
	if err != nil {
		return err
	}
	m.counts = counts
	m.packed, m.simple = pack(m.Nodes)
	return nil
}

// Check is Validate without preparing the model: it only reads it, so it may run while
// other goroutines score.
func (m *Model) Check(numFeatures int) error {
	_, err := m.check(numFeatures)
	return err
}

// check returns the trees per output.
func (m *Model) check(numFeatures int) ([]float64, error) {
	if m.NumFeatures != numFeatures {
		return nil, fmt.Errorf("forest: model reads %d features, signature has %d", m.NumFeatures, numFeatures)
	}
	if m.NumFeatures < 1 || m.NumFeatures > MaxFeatures {
		return nil, fmt.Errorf("forest: %d features (want 1 to %d)", m.NumFeatures, MaxFeatures)
	}
	switch m.Trainer {
	case "", LightGBM, XGBoost:
	default:
		return nil, fmt.Errorf("forest: unknown trainer %q", m.Trainer)
	}
	if m.NumOutputs < 1 || m.NumOutputs > MaxOutputs {
		return nil, fmt.Errorf("forest: %d outputs (want 1 to %d)", m.NumOutputs, MaxOutputs)
	}
	if len(m.BaseScore) != m.NumOutputs {
		return nil, fmt.Errorf("forest: %d base scores for %d outputs", len(m.BaseScore), m.NumOutputs)
	}
	for k, b := range m.BaseScore {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return nil, fmt.Errorf("forest: base score %d is %v", k, b)
		}
	}
	if len(m.Categorical) != 0 && len(m.Categorical) != m.NumFeatures {
		return nil, fmt.Errorf("forest: %d categorical flags for %d features", len(m.Categorical), m.NumFeatures)
	}
	switch m.Transform {
	case Identity, Exp:
	case Sigmoid:
		if !(m.SigmoidScale > 0) || math.IsInf(m.SigmoidScale, 0) {
			return nil, fmt.Errorf("forest: sigmoid scale %v is not positive and finite", m.SigmoidScale)
		}
		if m.Float32 && m.SigmoidScale != 1 {
			return nil, fmt.Errorf("forest: sigmoid scale %v with float32 arithmetic (XGBoost's sigmoid has none)", m.SigmoidScale)
		}
	case Softmax:
		if m.NumOutputs < 2 {
			return nil, errors.New("forest: softmax with one output")
		}
	default:
		return nil, fmt.Errorf("forest: unknown transform %q", m.Transform)
	}
	if len(m.Nodes) > MaxNodes || len(m.Roots) > MaxTrees {
		return nil, fmt.Errorf("forest: %d nodes and %d trees, more than %d or %d", len(m.Nodes), len(m.Roots), MaxNodes, MaxTrees)
	}
	if len(m.TreeOutput) != len(m.Roots) {
		return nil, fmt.Errorf("forest: %d tree outputs for %d trees", len(m.TreeOutput), len(m.Roots))
	}
	if len(m.Roots) == 0 {
		return nil, errors.New("forest: no trees")
	}
	if len(m.CatBits) > MaxNodes {
		return nil, fmt.Errorf("forest: %d bitset words, more than %d", len(m.CatBits), MaxNodes)
	}
	for t, r := range m.Roots {
		if (t == 0 && r != 0) || (t > 0 && r <= m.Roots[t-1]) || int(r) >= len(m.Nodes) {
			return nil, fmt.Errorf("forest: tree %d starts at node %d: want the first tree at 0, each after the one before, all before %d (the node count)", t, r, len(m.Nodes))
		}
	}
	counts := make([]float64, m.NumOutputs)
	for t, r := range m.Roots {
		end := int32(len(m.Nodes))
		if t+1 < len(m.Roots) {
			end = m.Roots[t+1]
		}
		if o := m.TreeOutput[t]; o < 0 || int(o) >= m.NumOutputs {
			return nil, fmt.Errorf("forest: tree %d adds to output %d of %d", t, o, m.NumOutputs)
		}
		counts[m.TreeOutput[t]]++
		for i := r; i < end; i++ {
			n := &m.Nodes[i]
			if n.Feature < 0 {
				if n.Feature != -1 {
					return nil, fmt.Errorf("forest: tree %d node %d has feature %d", t, i, n.Feature)
				}
				if math.IsNaN(n.Value) || math.IsInf(n.Value, 0) {
					return nil, fmt.Errorf("forest: tree %d leaf %d has value %v", t, i, n.Value)
				}
				continue
			}
			switch {
			case int(n.Feature) >= numFeatures:
				return nil, fmt.Errorf("forest: tree %d node %d splits on feature %d of %d", t, i, n.Feature, numFeatures)
			case n.Left != i+1 || n.Right <= n.Left || n.Right >= end:
				return nil, fmt.Errorf("forest: tree %d node %d has children %d and %d: want the left child next (%d) and the right one after it inside the tree [%d, %d)", t, i, n.Left, n.Right, i+1, r, end)
			case n.Kind > CatRight:
				return nil, fmt.Errorf("forest: tree %d node %d has split kind %d", t, i, n.Kind)
			case n.Missing > MissingNaN:
				return nil, fmt.Errorf("forest: tree %d node %d has missing type %d", t, i, n.Missing)
			case math.IsNaN(n.Threshold) || math.IsInf(n.Threshold, 0):
				return nil, fmt.Errorf("forest: tree %d node %d has threshold %v", t, i, n.Threshold)
			case (n.Kind == CatLeft || n.Kind == CatRight) &&
				(n.CatStart < 0 || n.CatLen < 0 || n.CatLen > MaxCatLen || int(n.CatStart)+int(n.CatLen) > len(m.CatBits)):
				return nil, fmt.Errorf("forest: tree %d node %d has bitset [%d, +%d) outside the %d words", t, i, n.CatStart, n.CatLen, len(m.CatBits))
			}
		}
	}
	return counts, nil
}

// CategoricalFeatures reports which features are categorical: declared so (Categorical)
// or split on as categories.
func (m *Model) CategoricalFeatures() []bool {
	c := make([]bool, m.NumFeatures)
	copy(c, m.Categorical)
	for i := range m.Nodes {
		n := &m.Nodes[i]
		if n.Feature >= 0 && (n.Kind == CatLeft || n.Kind == CatRight) && int(n.Feature) < len(c) {
			c[n.Feature] = true
		}
	}
	return c
}

// PredictRaw writes the K margins of row into out (len ≥ NumOutputs); row holds at least
// NumFeatures values, NaN for missing.
func (m *Model) PredictRaw(row, out []float64) {
	out = out[:m.NumOutputs]
	_ = row[:m.NumFeatures]
	to := m.TreeOutput
	var v [4]float64
	switch {
	case m.Float32 && len(out) == 1:
		acc := float32(m.BaseScore[0])
		for t := 0; t < len(to); {
			n := m.leaves(row, t, &v)
			for _, x := range v[:n] {
				acc += float32(x)
			}
			t += n
		}
		out[0] = float64(acc)
	case m.Float32:
		for k := range out {
			out[k] = float64(float32(m.BaseScore[k]))
		}
		for t := 0; t < len(to); {
			n := m.leaves(row, t, &v)
			for j, x := range v[:n] {
				o := to[t+j]
				out[o] = float64(float32(out[o]) + float32(x))
			}
			t += n
		}
	case len(out) == 1:
		acc := 0.0
		for t := 0; t < len(to); {
			n := m.leaves(row, t, &v)
			for _, x := range v[:n] {
				acc += x
			}
			t += n
		}
		out[0] = acc
	default:
		for k := range out {
			out[k] = 0
		}
		for t := 0; t < len(to); {
			n := m.leaves(row, t, &v)
			for j, x := range v[:n] {
				out[to[t+j]] += x
			}
			t += n
		}
	}
	m.average(out)
	if !m.Float32 {
		for k := range out {
			out[k] += m.BaseScore[k]
		}
	}
}

// leaves stores the leaf values of row in the trees from t on — four when they can be
// walked together, else one — and returns how many.
func (m *Model) leaves(row []float64, t int, v *[4]float64) int {
	p, roots := m.packed, m.Roots
	switch {
	case p == nil:
		v[0] = m.walkNodes(roots[t], row)
		return 1
	case t+4 <= len(roots):
		m.walk4(p, roots[t:t+4], row, v)
		return 4
	default:
		v[0] = m.walk(p, roots[t], row)
		return 1
	}
}

func (m *Model) average(out []float64) {
	if !m.AverageOutput {
		return
	}
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
			if m.Float32 {
				out[k] = float64(float32(out[k]) / float32(c))
			} else {
				out[k] /= c
			}
		}
	}
}

// PredictInto writes the K transformed outputs of row into out (len ≥ NumOutputs):
// probabilities for sigmoid and softmax models, values for the others.
func (m *Model) PredictInto(row, out []float64) {
	m.PredictRaw(row, out)
	out = out[:m.NumOutputs]
	if m.Float32 {
		transform32(m.Transform, out)
		return
	}
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

// expf is exp of a float32, correctly rounded but for double rounding (glibc's expf is
// within 0.502 ulp), so it agrees with XGBoost's expf but in the rarest cases.
func expf(x float32) float32 { return float32(math.Exp(float64(x))) }

// transform32 applies the transform as XGBoost 1.7 does in float32 (common::Sigmoid,
// expf, common::Softmax with its double sum).
func transform32(transform string, out []float64) {
	switch transform {
	case Sigmoid:
		for k, v := range out {
			x := min(-float32(v), 88.7)
			denom := expf(x) + 1 + 1e-16
			out[k] = float64(1 / denom)
		}
	case Exp:
		for k, v := range out {
			out[k] = float64(expf(float32(v)))
		}
	case Softmax:
		mx := float32(out[0])
		for _, v := range out[1:] {
			mx = max(mx, float32(v))
		}
		var s float64
		for k, v := range out {
			e := expf(float32(v) - mx)
			out[k] = float64(e)
			s += float64(e)
		}
		fs := float32(s)
		for k, v := range out {
			out[k] = float64(float32(v) / fs)
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
