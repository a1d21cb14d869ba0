package gbdt

// treeNode is a node of a tree being grown, in bins rather than raw values.
type treeNode struct {
	leaf        bool
	split       split // when !leaf
	left, right int
	value       float64 // when leaf
	stats       int64   // packed gradient and hessian sums (see quantizer)
	start, end  int     // the node's rows are grower.rows[start:end]
}

// grower grows one tree at a time over the training rows, reusing its buffers.
type grower struct {
	data      *binnedData
	feats     []featureBins
	nbins     []int
	p         Params
	splitters [2]splitter // one per child, so that both children are searched at once
	pool      histPool
	hist      histBuilder

	rows     []int32 // the training rows, partitioned in place so that each node owns a range
	scratch  []int32
	scratch2 []int32
}

// candidate is a leaf that may be split: its histogram and its best split.
type candidate struct {
	node  int
	depth int
	hist  histogram
	best  split
}

func newGrower(d *binnedData, feats []featureBins, p Params, qz *quantizer, trainRows []int32) *grower {
	nbins := make([]int, len(feats))
	for i := range feats {
		nbins[i] = feats[i].nbins
	}
	gr := &grower{
		data: d, feats: feats, nbins: nbins, p: p,
		pool:    histPool{nf: d.numFeatures},
		rows:    append([]int32(nil), trainRows...),
		scratch: make([]int32, len(trainRows)), scratch2: make([]int32, len(trainRows)),
	}
	for i := range gr.splitters {
		gr.splitters[i] = splitter{
			feats: feats, qz: qz, lambda: p.L2, minSamples: float64(p.MinSamplesLeaf), minHess: p.MinHessianLeaf,
			order: make([]int, 0, 256), keys: make([]float64, 256),
		}
	}
	gr.hist = histBuilder{data: d, nbins: nbins, workers: p.Workers, pool: &gr.pool}
	return gr
}

// grow grows a tree best-first: it always splits the open leaf with the largest gain, until
// MaxLeaves leaves or no leaf can be split. With MaxLeaves = 2^MaxDepth every split that a
// depth-wise grower would make is made, so this equals depth-wise growth then.
func (g *grower) grow(q []int64, trainRows []int32) []treeNode {
	copy(g.rows, trainRows) // ascending, for cache-friendly histogram reads
	nodes := []treeNode{{leaf: true, start: 0, end: len(g.rows)}}
	rootHist := g.pool.get()
	g.hist.build(rootHist, g.rows, q)
	var tot int64
	for _, v := range rootHist[0][:g.nbins[0]] {
		tot += v
	}
	nodes[0].stats = tot

	var open []candidate
	if c, ok := g.candidate(&g.splitters[0], nodes, 0, 0, rootHist); ok {
		open = append(open, c)
	} else {
		g.pool.put(rootHist)
	}
	leaves := 1
	for leaves < g.p.MaxLeaves && len(open) > 0 {
		// The best gain wins; among equal gains the earliest node, so the order is fixed.
		bi := 0
		for i := range open {
			if open[i].best.gain > open[bi].best.gain {
				bi = i
			}
		}
		c := open[bi]
		open = append(open[:bi], open[bi+1:]...)

		n := &nodes[c.node]
		mid := g.partition(n.start, n.end, c.best.feature, &c.best.left)
		l, r := len(nodes), len(nodes)+1
		n.leaf, n.split, n.left, n.right = false, c.best, l, r
		nodes = append(nodes,
			treeNode{leaf: true, stats: c.best.l, start: n.start, end: mid},
			treeNode{leaf: true, stats: c.best.r, start: mid, end: n.end})
		leaves++

		depth := c.depth + 1
		lOK, rOK := g.splittable(&nodes[l], depth, leaves), g.splittable(&nodes[r], depth, leaves)
		if !lOK && !rOK {
			g.pool.put(c.hist)
			continue
		}
		// Build the smaller child's histogram from its rows; the larger one's is the parent's
		// minus it, computed in the parent's buffer.
		small := l
		if nodes[r].end-nodes[r].start < nodes[l].end-nodes[l].start {
			small = r
		}
		sh := g.pool.get()
		g.hist.build(sh, g.rows[nodes[small].start:nodes[small].end], q)
		subtract(c.hist, c.hist, sh, g.nbins)
		children, oks, hists := [2]int{l, r}, [2]bool{lOK, rOK}, [2]histogram{c.hist, c.hist}
		hists[small-l] = sh
		// The two children's split searches are independent: one goroutine each.
		var cands [2]candidate
		parallelFor(2, g.p.Workers, func(i int) {
			if oks[i] {
				cands[i], oks[i] = g.candidate(&g.splitters[i], nodes, children[i], depth, hists[i])
			}
		})
		for i := range cands {
			if oks[i] {
				open = append(open, cands[i])
			} else {
				g.pool.put(hists[i])
			}
		}
	}
	for _, c := range open {
		g.pool.put(c.hist)
	}
	return nodes
}

// splittable reports whether a new leaf could be split at all, before paying for its
// histogram.
func (g *grower) splittable(n *treeNode, depth, leaves int) bool {
	return (g.p.MaxDepth == 0 || depth < g.p.MaxDepth) && leaves < g.p.MaxLeaves &&
		n.end-n.start >= 2*g.p.MinSamplesLeaf && g.hess(n.stats) >= 2*g.p.MinHessianLeaf
}

func (g *grower) hess(packed int64) float64 {
	_, h := g.splitters[0].qz.unpack(packed)
	return h
}

func (g *grower) candidate(s *splitter, nodes []treeNode, node, depth int, h histogram) (candidate, bool) {
	n := &nodes[node]
	if !g.splittable(n, depth, 1) {
		return candidate{}, false
	}
	best, ok := s.best(h, n.stats, n.end-n.start)
	return candidate{node: node, depth: depth, hist: h, best: best}, ok
}

// partitionChunk is the row-chunk size for partitioning a large node in parallel.
const partitionChunk = 1 << 14

// partition reorders rows[start:end] so that the rows going left come first, keeping both
// sides in ascending order, and returns where the right side starts. A stable partition is
// the same however the range is cut into chunks, so the chunks run in parallel.
func (g *grower) partition(start, end, feature int, left *bitset256) int {
	rows := g.rows[start:end]
	col := g.data.cols[feature]
	var goLeft [256]uint8
	for b := range goLeft {
		if left.has(uint8(b)) {
			goLeft[b] = 1
		}
	}
	k := 1
	if g.p.Workers > 1 {
		k = min(2*g.p.Workers, max(1, len(rows)/partitionChunk))
	}
	if k == 1 {
		nl := partitionInto(rows, rows, g.scratch, col, &goLeft)
		copy(rows[nl:], g.scratch[:len(rows)-nl])
		return start + nl
	}
	// Chunk c sends its left rows to lefts[lo:] and its right rows to rights[lo:]; then the
	// pieces are concatenated back into rows.
	lefts, rights := g.scratch[start:end], g.scratch2[start:end]
	nls := make([]int, k)
	parallelFor(k, g.p.Workers, func(c int) {
		lo, hi := c*len(rows)/k, (c+1)*len(rows)/k
		nls[c] = partitionInto(rows[lo:hi], lefts[lo:hi], rights[lo:hi], col, &goLeft)
	})
	nl := 0
	for _, v := range nls {
		nl += v
	}
	parallelFor(k, g.p.Workers, func(c int) {
		lo, hi := c*len(rows)/k, (c+1)*len(rows)/k
		l0, r0 := 0, nl
		for j := range c {
			l0 += nls[j]
			r0 += (j+1)*len(rows)/k - j*len(rows)/k - nls[j]
		}
		copy(rows[l0:], lefts[lo:lo+nls[c]])
		copy(rows[r0:], rights[lo+nls[c]-nls[c]:][:hi-lo-nls[c]])
	})
	return start + nl
}

// partitionInto writes the rows going left to lefts and the others to rights, both in order,
// and returns the number going left. lefts may be rows itself.
func partitionInto(rows, lefts, rights []int32, col []uint8, goLeft *[256]uint8) int {
	nl, nr := 0, 0
	for _, r := range rows {
		// Branch-free: the side is unpredictable, so write the row to both places and advance
		// one of them.
		l := int(goLeft[col[r]])
		lefts[nl] = r
		rights[nr] = r
		nl += l
		nr += 1 - l
	}
	return nl
}
