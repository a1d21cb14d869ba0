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

// nodeStats are a node's gradient and hessian sums.
type nodeStats struct {
	G, H float64
}

func (s nodeStats) add(b binStat) nodeStats   { return nodeStats{s.G + b.G, s.H + b.H} }
func (s nodeStats) sub(o nodeStats) nodeStats { return nodeStats{s.G - o.G, s.H - o.H} }

// bitset256 is a set of bins.
type bitset256 [4]uint64

func (s *bitset256) set(b uint8)           { s[b>>6] |= 1 << (b & 63) }
func (s *bitset256) has(b uint8) bool      { return s[b>>6]>>(b&63)&1 != 0 }
func (s *bitset256) hasBit(b uint8) uint64 { return s[b>>6] >> (b & 63) & 1 }

// split is the best way found to split a node.
type split struct {
	gain        float64
	feature     int
	threshold   int       // numeric: value bins 0..threshold go left
	left        bitset256 // every bin that goes left, the missing bin included when defaultLeft
	defaultLeft bool
	l, r        nodeStats
}

// splitter finds splits under the tree's constraints.
type splitter struct {
	feats      []featureBins
	lambda     float64
	minSamples float64
	minHess    float64
	// countPerHess estimates a side's row count from its hessian sum as the node's rows per
	// unit of hessian (LightGBM does the same for min_data_in_leaf): exact for squared error,
	// an approximation for log loss, where hessians differ between rows.
	countPerHess float64
	order        []int // scratch for categorical ordering
}

func (s *splitter) score(st nodeStats) float64 { return st.G * st.G / (st.H + s.lambda) }

func (s *splitter) allowed(st nodeStats) bool {
	return st.H*s.countPerHess >= s.minSamples && st.H >= s.minHess
}

// best returns the best split of a node of rows rows with histogram h and totals tot; ok is false when no
// split has positive gain. Features are scanned in order and only a strictly better gain
// replaces the best, so ties resolve the same way on every run.
func (s *splitter) best(h histogram, tot nodeStats, rows int) (best split, ok bool) {
	parent := s.score(tot)
	s.countPerHess = float64(rows) / tot.H
	best.gain = minGain
	for f := range s.feats {
		fb := &s.feats[f]
		if fb.valueBins() < 1 || (fb.valueBins() < 2 && h[f][fb.missingBin()].H == 0) {
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

func (s *splitter) bestNumeric(best *split, ok *bool, f int, fh *featureHist, tot nodeStats, parent float64) {
	fb := &s.feats[f]
	miss := fh[fb.missingBin()]
	found, thr, missLeft := false, 0, false
	var bestL nodeStats
	gainOf := func(l nodeStats) float64 {
		r := tot.sub(l)
		if !s.allowed(l) || !s.allowed(r) {
			return -1
		}
		return s.score(l) + s.score(r) - parent
	}
	var l nodeStats
	for b := range fb.valueBins() {
		l = l.add(fh[b])
		if g := gainOf(l); g > best.gain {
			best.gain, found, thr, missLeft, bestL = g, true, b, false, l
		}
		if miss.H > 0 {
			lm := l.add(miss)
			if g := gainOf(lm); g > best.gain {
				best.gain, found, thr, missLeft, bestL = g, true, b, true, lm
			}
		}
	}
	if !found {
		return
	}
	*ok = true
	best.feature, best.threshold, best.l, best.r = f, thr, bestL, tot.sub(bestL)
	// Without missing values in this node, send future ones to the heavier child.
	best.defaultLeft = missLeft || (miss.H == 0 && best.l.H >= best.r.H)
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
func (s *splitter) bestCategorical(best *split, ok *bool, f int, fh *featureHist, tot nodeStats, parent float64) {
	fb := &s.feats[f]
	miss := fh[fb.missingBin()]
	order := s.order[:0]
	for b := range fb.valueBins() {
		if fh[b].H > 0 {
			order = append(order, b)
		}
	}
	s.order = order
	key := func(b int) float64 { return fh[b].G / (fh[b].H + catSmooth) }
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(key(a), key(b)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	found, cut, missLeft := false, 0, false
	var bestL nodeStats
	gainOf := func(l nodeStats) float64 {
		r := tot.sub(l)
		if !s.allowed(l) || !s.allowed(r) {
			return -1
		}
		return s.score(l) + s.score(r) - parent
	}
	var l nodeStats
	for i, b := range order {
		l = l.add(fh[b])
		if g := gainOf(l); g > best.gain {
			best.gain, found, cut, missLeft, bestL = g, true, i, false, l
		}
		if miss.H > 0 {
			lm := l.add(miss)
			if g := gainOf(lm); g > best.gain {
				best.gain, found, cut, missLeft, bestL = g, true, i, true, lm
			}
		}
	}
	if !found {
		return
	}
	*ok = true
	best.feature, best.threshold, best.l, best.r = f, -1, bestL, tot.sub(bestL)
	best.defaultLeft = missLeft || (miss.H == 0 && best.l.H >= best.r.H)
	best.left = bitset256{}
	for _, b := range order[:cut+1] {
		best.left.set(uint8(b))
	}
	if best.defaultLeft {
		best.left.set(fb.missingBin())
	}
}
