package forest

import "math"

// packedNode is a node compiled for scoring: 16 bytes, four to a cache line, the left
// child always the next node (preorder), so a walk reads one array front to back.
type packedNode struct {
	// v is the leaf value, the threshold T of an opNum split, the threshold of the other
	// numeric rules, or for categorical splits the bitset's position start<<32 | length,
	// as bits.
	v     float64
	right int32
	// op is the split rule (op* below) in the low 8 bits and the feature above them; a
	// leaf's op is 0.
	op uint32
}

// Split rules of packed nodes. opNum covers XGBoost's numeric splits and LightGBM's with
// missing types None and NaN: pack rewrites their threshold t into T such that a value
// goes right exactly when x > T (in float64), NaN going to the side the opNaNRight bit
// says — one comparison and no branch. The other rules keep their definitions.
const (
	opLeaf      = iota
	opNum                // right iff x > v; NaN right iff opNaNRight
	opLEZero             // LightGBM MissingZero: NaN and |x| <= 1e-35 take the default side, else x <= v goes left
	opLT32               // XGBoost numeric with threshold -Inf: float32(x) < float32(v) goes left, NaN the default side
	opCatLeft            // LightGBM categorical
	opCatRight           // XGBoost categorical
	opNaNRight  = 1 << 7 // or-ed in: NaN (the default side for the missing-aware rules) goes right
	opRuleMask  = opNaNRight - 1
	opFeatShift = 8
)

// pack compiles validated nodes; simple says every split is opNum.
func pack(nodes []Node) (p []packedNode, simple bool) {
	p = make([]packedNode, len(nodes))
	simple = true
	for i := range nodes {
		n := &nodes[i]
		q := &p[i]
		if n.Feature < 0 {
			q.v = n.Value
			continue
		}
		op := uint32(opNum)
		nanRight := !n.DefaultLeft
		switch n.Kind {
		case NumLE:
			switch n.Missing {
			case MissingNone:
				nanRight = !(0 <= n.Threshold) // NaN is read as 0
				q.v = leThreshold(n.Threshold)
			case MissingNaN:
				q.v = leThreshold(n.Threshold)
			case MissingZero:
				op, q.v = opLEZero, n.Threshold
			}
		case NumLT32:
			t := float32(n.Threshold)
			if math.IsInf(float64(t), -1) {
				op, q.v = opLT32, float64(t)
			} else {
				q.v = lt32Threshold(t)
			}
		case CatLeft, CatRight:
			op = opCatLeft
			if n.Kind == CatRight {
				op = opCatRight
			}
			q.v = math.Float64frombits(uint64(n.CatStart)<<32 | uint64(n.CatLen))
		}
		simple = simple && op == opNum
		if nanRight {
			op |= opNaNRight
		}
		q.op = op | uint32(n.Feature)<<opFeatShift
		q.right = n.Right
	}
	return p, simple
}

// leThreshold is T such that, for x not NaN, LightGBM's x <= t after reading |x| <= 1e-35
// as 0 is false exactly when x > T: t itself unless t is in [-1e-35, 1e-35).
func leThreshold(t float64) float64 {
	switch {
	case t >= zeroThreshold || t < -zeroThreshold:
		return t
	case t < 0: // 0 > t: only x < -1e-35 goes left
		return math.Nextafter(-zeroThreshold, math.Inf(-1))
	default: // 0 <= t < 1e-35: every x <= 1e-35 goes left
		return zeroThreshold
	}
}

// lt32Threshold is T such that, for x not NaN, XGBoost's !(float32(x) < t) holds exactly
// when x > T: the largest float64 that rounds to a float32 below t (t > -Inf; +Inf is
// the float32 overflow). Rounding to
// float32 is monotonic, so the values that round to t or above are those above T.
func lt32Threshold(t float32) float64 {
	lo, hi := float64(math.Nextafter32(t, float32(math.Inf(-1)))), float64(t)
	if math.IsInf(lo, -1) {
		lo = -0x1p128 // one float32 ulp below -MaxFloat32
	}
	if math.IsInf(hi, 1) {
		hi = 0x1p128 // one float32 ulp above MaxFloat32
	}
	mid := (lo + hi) / 2 // exact: float32 values have 24-bit mantissas
	if float32(mid) >= t {
		return math.Nextafter(mid, math.Inf(-1))
	}
	return mid
}

// stepNum moves one lane of a lockstep walk over opNum and leaf nodes one node down, with
// no branch; a leaf stays put.
func stepNum(p []packedNode, i int32, row []float64) int32 {
	n := &p[i]
	op := n.op
	x := row[op>>opFeatShift] // a leaf reads feature 0 and ignores it
	var r, nan, inner int32
	if x > n.v {
		r = 1
	}
	if x != x {
		nan = 1
	}
	if op != opLeaf {
		inner = -1
	}
	r |= nan & int32(op>>7)
	return i + (1+(n.right-i-1)&-r)&inner
}

// step is stepNum for any rule.
func (m *Model) step(p []packedNode, i int32, row []float64) int32 {
	if p[i].op&opRuleMask > opNum {
		if m.right(&p[i], row) {
			return p[i].right
		}
		return i + 1
	}
	return stepNum(p, i, row)
}

// walk4 walks the four trees rooted at r[0:4] in lockstep, so that one tree's loads
// overlap the others' (a single walk waits on each node's load before it knows the next),
// and stores their leaf values in v.
func (m *Model) walk4(p []packedNode, r []int32, row []float64, v *[4]float64) {
	i0, i1, i2, i3 := r[0], r[1], r[2], r[3]
	if m.simple {
		for p[i0].op|p[i1].op|p[i2].op|p[i3].op != opLeaf {
			i0 = stepNum(p, i0, row)
			i1 = stepNum(p, i1, row)
			i2 = stepNum(p, i2, row)
			i3 = stepNum(p, i3, row)
		}
	} else {
		for p[i0].op|p[i1].op|p[i2].op|p[i3].op != opLeaf {
			i0 = m.step(p, i0, row)
			i1 = m.step(p, i1, row)
			i2 = m.step(p, i2, row)
			i3 = m.step(p, i3, row)
		}
	}
	*v = [4]float64{p[i0].v, p[i1].v, p[i2].v, p[i3].v}
}

// walk follows the packed tree rooted at i to its leaf value.
func (m *Model) walk(p []packedNode, i int32, row []float64) float64 {
	for p[i].op != opLeaf {
		i = m.step(p, i, row)
	}
	return p[i].v
}

// right decides the rules other than opNum.
func (m *Model) right(n *packedNode, row []float64) bool {
	op := n.op
	x := row[op>>opFeatShift]
	switch op & opRuleMask {
	case opLEZero:
		if !(x > zeroThreshold || x < -zeroThreshold) { // NaN, ±0 and tiny values
			return op&opNaNRight != 0
		}
		return !(x <= n.v)
	case opLT32:
		if x != x {
			return op&opNaNRight != 0
		}
		return !(float32(x) < float32(n.v))
	case opCatLeft:
		return !catLeft(x, m.bits(n.v))
	default: // opCatRight
		if x != x {
			return op&opNaNRight != 0
		}
		return catRight(x, m.bits(n.v))
	}
}

func (m *Model) bits(v float64) []uint32 {
	b := math.Float64bits(v)
	start, n := b>>32, b&(1<<32-1)
	return m.CatBits[start : start+n]
}

// catLeft is LightGBM's CategoricalDecision: NaN and codes below 0 (after truncation
// toward zero, as C's (int) cast) go right, the others go left when their bit is set.
func catLeft(x float64, bits []uint32) bool {
	if !(x > -1) || x >= 1<<31 { // NaN too; (int) of ≥ 2³¹ is negative on x86
		return false
	}
	return inBits(bits, int(x))
}

// catRight is XGBoost's Decision for a value that is not NaN: the code float32(x)
// truncated goes right when its bit is set; negative codes and codes ≥ 2²⁴ go left.
func catRight(x float64, bits []uint32) bool {
	f := float32(x)
	if f < 0 || f >= 1<<24 {
		return false
	}
	return inBits(bits, int(f))
}

func inBits(bits []uint32, code int) bool {
	w := code >> 5
	return w < len(bits) && bits[w]>>(uint(code)&31)&1 != 0
}

// walkNodes is the walk over Nodes, written from the rules' definitions rather than for
// speed: models not yet validated score with it, and tests hold the packed walk to it.
func (m *Model) walkNodes(i int32, row []float64) float64 {
	for {
		n := &m.Nodes[i]
		if n.Feature < 0 {
			return n.Value
		}
		x := row[n.Feature]
		var left bool
		switch n.Kind {
		case NumLE:
			if math.Abs(x) <= zeroThreshold {
				x = 0
			}
			switch {
			case math.IsNaN(x) && n.Missing == MissingNaN:
				left = n.DefaultLeft
			case math.IsNaN(x):
				x = 0
				fallthrough
			default:
				if n.Missing == MissingZero && x == 0 {
					left = n.DefaultLeft
				} else {
					left = x <= n.Threshold
				}
			}
		case NumLT32:
			if math.IsNaN(x) {
				left = n.DefaultLeft
			} else {
				left = float32(x) < float32(n.Threshold)
			}
		case CatLeft:
			left = catLeft(x, m.CatBits[n.CatStart:n.CatStart+n.CatLen])
		case CatRight:
			if math.IsNaN(x) {
				left = n.DefaultLeft
			} else {
				left = !catRight(x, m.CatBits[n.CatStart:n.CatStart+n.CatLen])
			}
		}
		if left {
			i = n.Left
		} else {
			i = n.Right
		}
	}
}
