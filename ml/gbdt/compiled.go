package gbdt

import (
	"math"
	"slices"
)

// compiled is the model laid out for scoring one row fast: every tree's nodes in preorder
// in one array of 16-byte nodes (four to a cache line, the left child always next), walked
// four trees at a time so that one tree's loads overlap the others', each step without a
// branch. The JSON form in Trees stays the model; compiled is derived from it and never
// marshalled.
type compiled struct {
	nodes []packedNode
	roots []int32
	// catBits holds each categorical split's bitset of the codes going left, as many words
	// as its feature's known codes need, after an empty word.
	catBits []uint64
	// known[j] is the bitset of feature j's codes seen in training (nil for numeric
	// features): a row's categorical value is read once, a known code or missing.
	known [][]uint64
	// categorical lists the categorical features.
	categorical []int
}

// packedNode is a leaf (op 0, v its value) or a split on feature op>>opFeatShift.
type packedNode struct {
	// v is a leaf's value, a numeric split's threshold, or a categorical split's bitset
	// start in catBits, as bits.
	v     float64
	right int32
	op    uint32
}

const (
	opLeaf        = 0
	opNum         = 1      // x <= v goes left
	opCat         = 1 << 6 // or-ed in: a categorical split, codes in the node's bitset go left
	opMissRight   = 1 << 7 // or-ed in: missing values go right (DefaultLeft false)
	opFeatShift   = 8
	maxBitsetCode = 1 << 16 // larger codes keep the node walk's binary search
)

// compile lays the validated model out for scoring, or returns nil when it cannot keep
// the node walk's answers (codes too large for bitsets, a split naming codes its feature
// never saw); Predict then walks Trees.
func compile(m *Model) *compiled {
	if m.NumFeatures == 0 {
		return nil // a leaf's step reads feature 0
	}
	c := &compiled{catBits: []uint64{0}, known: make([][]uint64, m.NumFeatures)}
	for j, f := range m.Features {
		if !f.Categorical {
			continue
		}
		words := 1
		if len(f.Categories) > 0 {
			top := f.Categories[len(f.Categories)-1]
			if top >= maxBitsetCode {
				return nil
			}
			words = int(top)/64 + 1
		}
		c.known[j] = make([]uint64, words)
		setBits(c.known[j], f.Categories)
		c.categorical = append(c.categorical, j)
	}
	for t := range m.Trees {
		c.roots = append(c.roots, int32(len(c.nodes)))
		if !c.appendPreorder(m, m.Trees[t].Nodes, 0) {
			return nil
		}
	}
	return c
}

// appendPreorder appends node i of a tree and its subtree: the node, its left subtree,
// then its right subtree, whose root index the node records.
func (c *compiled) appendPreorder(m *Model, nodes []Node, i int32) bool {
	n := &nodes[i]
	at := len(c.nodes)
	c.nodes = append(c.nodes, packedNode{})
	if n.IsLeaf() {
		c.nodes[at].v = n.Value
		return true
	}
	op, threshold := uint32(opNum), n.Threshold
	if known := c.known[n.Feature]; known != nil {
		for _, code := range n.Categories {
			if _, ok := slices.BinarySearch(m.Features[n.Feature].Categories, code); !ok {
				return false
			}
		}
		op |= opCat
		start := len(c.catBits)
		c.catBits = append(c.catBits, make([]uint64, len(known))...)
		setBits(c.catBits[start:], n.Categories)
		threshold = math.Float64frombits(uint64(start))
	}
	if !n.DefaultLeft {
		op |= opMissRight
	}
	if !c.appendPreorder(m, nodes, n.Left) {
		return false
	}
	right := int32(len(c.nodes))
	if !c.appendPreorder(m, nodes, n.Right) {
		return false
	}
	c.nodes[at] = packedNode{v: threshold, right: right, op: op | uint32(n.Feature)<<opFeatShift}
	return true
}

func setBits(bits []uint64, codes []int32) {
	for _, code := range codes {
		bits[code>>6] |= 1 << (uint(code) & 63)
	}
}

// readCategorical rewrites row's categorical values in place as a known code or NaN
// (missing, negative, fractional or unseen in training: the default side of every split).
func (c *compiled) readCategorical(row []float64) {
	for _, j := range c.categorical {
		x, known := row[j], c.known[j]
		if x >= 0 && x < float64(len(known)*64) && x == math.Trunc(x) {
			if code := int(x); known[code>>6]>>(code&63)&1 != 0 {
				continue
			}
		}
		row[j] = math.NaN()
	}
}

// stepNum moves one walk over numeric splits and leaves one node down without a branch;
// a leaf stays put. A value is missing when x-x is NaN (NaN and ±Inf): it compares false
// (NaN) or on either side (±Inf), and the default side decides.
func stepNum(p []packedNode, i int32, row []float64) int32 {
	n := &p[i]
	op := n.op
	x := row[op>>opFeatShift] // a leaf reads feature 0 and ignores it
	var right, missing, inner int32
	if x > n.v {
		right = 1
	}
	if d := x - x; d != d {
		missing = 1
	}
	if op != opLeaf {
		inner = -1
	}
	right = right&^missing | missing&int32(op>>7)
	return i + (1+(n.right-i-1)&-right)&inner
}

// stepMixed is stepNum for models with categorical splits, also without a branch: a
// categorical value was read as a known code or NaN by readCategorical, and a categorical
// split's v holds the start of its bitset in catBits (word 0 is empty: numeric splits and
// missing values read it).
func stepMixed(p []packedNode, bits []uint64, i int32, row []float64) int32 {
	n := &p[i]
	op := n.op
	x := row[op>>opFeatShift]
	var greater, missing, inner int32
	if x > n.v {
		greater = 1
	}
	if d := x - x; d != d {
		missing = 1
	}
	if op != opLeaf {
		inner = -1
	}
	cat := -int32(op >> 6 & 1)
	code := int(x)
	word := (int(math.Float64bits(n.v)) + code>>6) & int(cat&^-missing)
	left := int32(bits[word] >> (uint(code) & 63) & 1)
	right := greater&^cat | (1-left)&cat
	right = right&^missing | missing&int32(op>>7)
	return i + (1+(n.right-i-1)&-right)&inner
}

// raw is the margin of row: base plus every tree's leaf value, added in tree order as
// the node walk adds them, so both give the same bits. row must be writable scratch when
// the model has categorical features.
func (c *compiled) raw(base float64, row []float64) float64 {
	c.readCategorical(row)
	s := base
	p, r := c.nodes, c.roots
	t := 0
	for ; t+4 <= len(r); t += 4 {
		i0, i1, i2, i3 := r[t], r[t+1], r[t+2], r[t+3]
		if len(c.categorical) == 0 {
			for p[i0].op|p[i1].op|p[i2].op|p[i3].op != opLeaf {
				i0 = stepNum(p, i0, row)
				i1 = stepNum(p, i1, row)
				i2 = stepNum(p, i2, row)
				i3 = stepNum(p, i3, row)
			}
		} else {
			for p[i0].op|p[i1].op|p[i2].op|p[i3].op != opLeaf {
				i0 = stepMixed(p, c.catBits, i0, row)
				i1 = stepMixed(p, c.catBits, i1, row)
				i2 = stepMixed(p, c.catBits, i2, row)
				i3 = stepMixed(p, c.catBits, i3, row)
			}
		}
		s += p[i0].v
		s += p[i1].v
		s += p[i2].v
		s += p[i3].v
	}
	for ; t < len(r); t++ {
		i := r[t]
		for p[i].op != opLeaf {
			i = stepMixed(p, c.catBits, i, row)
		}
		s += p[i].v
	}
	return s
}
