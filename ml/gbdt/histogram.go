package gbdt

// binStat sums the gradients and hessians of the rows that fell into one bin. Row counts are
// not kept: adding a third field to every update costs a third more time in the hottest
// loop, and a bin's count is estimated from its hessian instead (see splitter.countPerHess).
// For squared error every hessian is 1, so the estimate is exact.
type binStat struct {
	G, H float64
}

// gradPair is a row's gradient and hessian, side by side so that one cache line serves both.
type gradPair struct {
	G, H float64
}

// featureHist is one feature's histogram. A fixed 256 bins, indexed by a uint8, needs no
// bounds check in the hot loop; unused bins stay zero.
type featureHist [256]binStat

// histogram holds one node's histograms, one per feature.
type histogram []featureHist

// minParallelCells is the node size (rows × features) below which building a histogram on
// one goroutine beats starting several.
const minParallelCells = 1 << 16

// histChunkRows is the row-chunk size for building large nodes' histograms in parallel, and
// maxHistChunks caps the number of chunks (and partial histograms to add up).
const (
	histChunkRows = 16384
	maxHistChunks = 16
)

// histBuilder builds node histograms, in parallel where it pays off. Either way the result
// is bit-identical for any number of workers, because how the work is cut depends only on
// the node's size: a large node's rows are cut into chunks whose partial histograms are added
// in chunk order, and a smaller node's features are split between goroutines, each cell then
// summed over the rows in row order.
type histBuilder struct {
	data    *binnedData
	nbins   []int
	workers int
	pool    *histPool
	parts   []histogram
	sinks   [maxHistChunks]uint8 // accumulate's results, one slot per goroutine
}

// build fills h (which must be zero) with the sums over rows.
func (hb *histBuilder) build(h histogram, rows []int32, gh []gradPair) {
	d, nf := hb.data, hb.data.numFeatures
	switch {
	case len(rows)*nf < minParallelCells:
		hb.sinks[0] = accumulate(h, d.bins, nf, 0, rows, gh)
	case len(rows) >= 2*histChunkRows:
		k := min(maxHistChunks, len(rows)/histChunkRows)
		parts := hb.parts[:0]
		parts = append(parts, h)
		for range k - 1 {
			parts = append(parts, hb.pool.get())
		}
		hb.parts = parts
		parallelFor(k, hb.workers, func(c int) {
			hb.sinks[c] = accumulate(parts[c], d.bins, nf, 0, rows[c*len(rows)/k:(c+1)*len(rows)/k], gh)
		})
		// Add the parts in chunk order; features are independent, so split those.
		parallelFor(hb.workers, hb.workers, func(w int) {
			for f := w * nf / hb.workers; f < (w+1)*nf/hb.workers; f++ {
				dst := &h[f]
				for _, p := range parts[1:] {
					src := &p[f]
					for b := range hb.nbins[f] {
						dst[b].G += src[b].G
						dst[b].H += src[b].H
					}
				}
			}
		})
		for _, p := range parts[1:] {
			hb.pool.put(p)
		}
	default:
		groups := min(hb.workers, nf, len(hb.sinks))
		parallelFor(groups, groups, func(g int) {
			f0, f1 := g*nf/groups, (g+1)*nf/groups
			hb.sinks[g] = accumulate(h[f0:f1], d.bins, nf, f0, rows, gh)
		})
	}
}

// gatherBlock is the number of rows whose gradients and bins accumulate gathers before
// adding them up; 256 rows' bin lines and gradients fit in L1.
const gatherBlock = 256

// accumulate is the hot loop: for each row, add its gradient pair to the bins of features
// f0..f0+len(h)-1.
//
// A node's rows are scattered, so their gradients and bins are cache misses, and in the
// update loop (dozens of instructions per row) the CPU can only have a few of them in flight.
// So the rows are taken in blocks: a tight first loop copies the gradients and touches the
// bin lines (many misses in flight at once), and the update loop then finds them in cache.
//
// It returns the touched bits only so that the compiler keeps the touching loads.
func accumulate(h histogram, bins []uint8, stride, f0 int, rows []int32, gh []gradPair) (touch uint8) {
	nf := len(h)
	var og [gatherBlock]gradPair
	for len(rows) > 0 {
		block := rows[:min(len(rows), gatherBlock)]
		rows = rows[len(block):]
		for i, r := range block {
			og[i] = gh[r]
			touch |= bins[int(r)*stride+f0]
		}
		for i, r := range block {
			p := og[i]
			row := bins[int(r)*stride+f0:][:nf]
			hh := h[:len(row)]
			k := 0
			// Four features per step: fewer loop branches, more independent updates in flight.
			for ; k+4 <= len(row); k += 4 {
				b0, b1, b2, b3 := row[k], row[k+1], row[k+2], row[k+3]
				e0, e1, e2, e3 := &hh[k][b0], &hh[k+1][b1], &hh[k+2][b2], &hh[k+3][b3]
				e0.G += p.G
				e0.H += p.H
				e1.G += p.G
				e1.H += p.H
				e2.G += p.G
				e2.H += p.H
				e3.G += p.G
				e3.H += p.H
			}
			for ; k < len(row); k++ {
				e := &hh[k][row[k]]
				e.G += p.G
				e.H += p.H
			}
		}
	}
	return touch
}

// subtract sets dst = parent − child: the histogram of a node's other child, for the price
// of one pass over the bins instead of one over the rows.
func subtract(dst, parent, child histogram, nbins []int) {
	for f := range dst {
		d, p, c := &dst[f], &parent[f], &child[f]
		for b := range nbins[f] {
			d[b] = binStat{G: p[b].G - c[b].G, H: p[b].H - c[b].H}
		}
	}
}

// histPool recycles histograms between nodes and trees: a histogram is tens to hundreds of
// kilobytes and a tree needs one per open leaf.
type histPool struct {
	nf   int
	free []histogram
}

// get returns a zeroed histogram.
func (p *histPool) get() histogram {
	if n := len(p.free); n > 0 {
		h := p.free[n-1]
		p.free = p.free[:n-1]
		clear(h)
		return h
	}
	return make(histogram, p.nf)
}

func (p *histPool) put(h histogram) {
	if h != nil {
		p.free = append(p.free, h)
	}
}
