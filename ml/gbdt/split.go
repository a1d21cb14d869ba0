package gbdt

import (
	"cmp"
	"slices"
)

// catSmooth is added to the hessian when ordering categories by gradient/hessian ratio, so
// that a category with a handful of rows does not sort to an extreme on noise (LightGBM's
// cat_smooth).
const catSmooth = 10

// minGain is the least gain worth a split; it keeps rounding noise from splitting a pure node.
const minGain = 1e-10

// bitset256 is a set of bins.
type bitset256 [4]uint64

func (s *bitset256) set(b uint8)      { s[b>>6] |= 1 << (b & 63) }
func (s *bitset256) has(b uint8) bool { return s[b>>6]>>(b&63)&1 != 0 }

// split is the best way found to split a node.
type split struct {
	gain        float64
	feature     int
	threshold   int       // numeric: value bins 0..threshold go left
	left        bitset256 // every bin that goes left, the missing bin included when defaultLeft
	defaultLeft bool
	l, r        int64 // the sides' packed sums
}

// splitter finds splits under the tree's constraints.
type splitter struct {
	feats      []featureBins
	qz         *quantizer
	lambda     float64
	minSamples float64
	minHess    float64
	// countPerHess estimates a side's row count from its hessian sum as the node's rows per
	// unit of hessian (LightGBM does the same for min_data_in_leaf): exact for squared error,
	// an approximation for log loss, where hessians differ between rows.
	countPerHess float64
	order        []int     // scratch for categorical ordering
	keys         []float64 // scratch: categorical ordering keys by bin
}

// gainOf is the loss reduction of splitting a node of totals tot (score parent) into l and
// tot−l, or -1 when a side breaks the constraints.
func (s *splitter) gainOf(l, tot int64, parent float64) float64 {
	gl, hl := s.qz.unpack(l)
	gr, hr := s.qz.unpack(tot - l)
	if hl*s.countPerHess < s.minSamples || hl < s.minHess || hr*s.countPerHess < s.minSamples || hr < s.minHess {
		return -1
	}
	return gl*gl/(hl+s.lambda) + gr*gr/(hr+s.lambda) - parent
}

// hessQ is the quantised hessian sum of a packed sum: positive exactly when rows are in it.
func hessQ(v int64) int64 { return int64(uint32(v)) }

// best returns the best split of a node of rows rows with histogram h and packed totals tot;
// ok is false when no split has positive gain. Features are scanned in order and only a
// strictly better gain replaces the best, so ties resolve the same way on every run.
func (s *splitter) best(h histogram, tot int64, rows int) (best split, ok bool) {
	g, hs := s.qz.unpack(tot)
	parent := g * g / (hs + s.lambda)
	s.countPerHess = float64(rows) / hs
	best.gain = minGain
	for f := range s.feats {
		fb := &s.feats[f]
		if fb.valueBins() < 2 && hessQ(h[f][fb.missingBin()]) == 0 {
			continue
		}
		if fb.categorical {
			s.bestCategorical(&best, &ok, f, &h[f], tot, parent)
		} else {
			s.bestNumeric(&best, &ok, f, &h[f], tot, parent)
		}
	}
	return best, ok
}

func (s *splitter) bestNumeric(best *split, ok *bool, f int, fh *featureHist, tot int64, parent float64) {
	fb := &s.feats[f]
	miss := fh[fb.missingBin()]
	hasMiss := hessQ(miss) > 0
	found, thr, missLeft := false, 0, false
	var bestL, l int64
	for b := range fb.valueBins() {
		l += fh[b]
		if g := s.gainOf(l, tot, parent); g > best.gain {
			best.gain, found, thr, missLeft, bestL = g, true, b, false, l
		}
		if hasMiss {
			if g := s.gainOf(l+miss, tot, parent); g > best.gain {
				best.gain, found, thr, missLeft, bestL = g, true, b, true, l+miss
			}
		}
	}
	if !found {
		return
	}
	*ok = true
	best.feature, best.threshold, best.l, best.r = f, thr, bestL, tot-bestL
	// Without missing values in this node, send future ones to the heavier child.
	best.defaultLeft = missLeft || (!hasMiss && hessQ(best.l) >= hessQ(best.r))
	best.left = bitset256{}
	for b := 0; b <= thr; b++ {
		best.left.set(uint8(b))
	}
	if best.defaultLeft {
		best.left.set(fb.missingBin())
	}
}

// bestCategorical orders the node's categories by G/(H+catSmooth) and scans the prefixes of
// that order: for squared-error-like gains the best binary partition of categories is such
// a prefix (Fisher 1958), so k−1 candidates stand in for 2^(k−1).
func (s *splitter) bestCategorical(best *split, ok *bool, f int, fh *featureHist, tot int64, parent float64) {
	fb := &s.feats[f]
	miss := fh[fb.missingBin()]
	hasMiss := hessQ(miss) > 0
	order, keys := s.order[:0], s.keys[:256]
	for b := range fb.valueBins() {
		if hessQ(fh[b]) > 0 {
			order = append(order, b)
			g, h := s.qz.unpack(fh[b])
			keys[b] = g / (h + catSmooth)
		}
	}
	s.order = order
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(keys[a], keys[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	found, cut, missLeft := false, 0, false
	var bestL, l int64
	for i, b := range order {
		l += fh[b]
		if g := s.gainOf(l, tot, parent); g > best.gain {
			best.gain, found, cut, missLeft, bestL = g, true, i, false, l
		}
		if hasMiss {
			if g := s.gainOf(l+miss, tot, parent); g > best.gain {
				best.gain, found, cut, missLeft, bestL = g, true, i, true, l+miss
			}
		}
	}
	if !found {
		return
	}
	*ok = true
	best.feature, best.threshold, best.l, best.r = f, -1, bestL, tot-bestL
	best.defaultLeft = missLeft || (!hasMiss && hessQ(best.l) >= hessQ(best.r))
	best.left = bitset256{}
	for _, b := range order[:cut+1] {
		best.left.set(uint8(b))
	}
	if best.defaultLeft {
		best.left.set(fb.missingBin())
	}
}
