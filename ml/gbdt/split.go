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

// gainOf is the loss reduction of splitting a node of quantised totals (tg, th) (score
// parent) into (lg, lh) and the rest, or -1 when a side breaks the constraints. Working on
// the integer sums keeps both sides exact.
func (s *splitter) gainOf(lg, lh, tg, th int64, parent float64) float64 {
	gl, hl := float64(lg)*s.qz.gScale, float64(lh)*s.qz.hScale
	gr, hr := float64(tg-lg)*s.qz.gScale, float64(th-lh)*s.qz.hScale
	if hl*s.countPerHess < s.minSamples || hl < s.minHess || hr*s.countPerHess < s.minSamples || hr < s.minHess {
		return -1
	}
	return gl*gl/(hl+s.lambda) + gr*gr/(hr+s.lambda) - parent
}

// split2 returns the quantised gradient and hessian sums of a packed sum.
func split2(v int64) (g, h int64) {
	h = int64(uint32(v))
	return (v - h) >> 32, h
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
	tg, th := split2(tot)
	mg, mh := split2(fh[fb.missingBin()])
	hasMiss := mh > 0
	found, thr, missLeft := false, 0, false
	var lg, lh int64
	for b := range fb.valueBins() {
		g, h := split2(fh[b])
		lg, lh = lg+g, lh+h
		if gain := s.gainOf(lg, lh, tg, th, parent); gain > best.gain {
			best.gain, found, thr, missLeft = gain, true, b, false
		}
		if hasMiss {
			if gain := s.gainOf(lg+mg, lh+mh, tg, th, parent); gain > best.gain {
				best.gain, found, thr, missLeft = gain, true, b, true
			}
		}
	}
	if !found {
		return
	}
	*ok = true
	var l int64
	for b := 0; b <= thr; b++ {
		l += fh[b]
	}
	if missLeft {
		l += fh[fb.missingBin()]
	}
	best.feature, best.threshold, best.l, best.r = f, thr, l, tot-l
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
	tg, th := split2(tot)
	mg, mh := split2(miss)
	for i, b := range order {
		l += fh[b]
		lg, lh := split2(l)
		if gain := s.gainOf(lg, lh, tg, th, parent); gain > best.gain {
			best.gain, found, cut, missLeft, bestL = gain, true, i, false, l
		}
		if hasMiss {
			if gain := s.gainOf(lg+mg, lh+mh, tg, th, parent); gain > best.gain {
				best.gain, found, cut, missLeft, bestL = gain, true, i, true, l+miss
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
