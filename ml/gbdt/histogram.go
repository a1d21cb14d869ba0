package gbdt

// gradPair is a row's gradient and hessian.
type gradPair struct {
	G, H float64
}

// A histogram cell holds the sums of a bin's quantised gradients and hessians packed into
// one int64, Σg<<32 + Σh (see quantizer), so the hot loop does one 8-byte add per row and
// feature instead of two float adds, a feature's histogram is 2 KiB (a node's fits in L1),
// and the sums are exact integers: any order of adding gives the same bits.
//
// Row counts are not kept: a bin's count is estimated from its hessian (see
// splitter.countPerHess); for squared error every hessian is 1, so the estimate is exact.

// featureHist is one feature's histogram. A fixed 256 bins, indexed by a uint8, needs no
// bounds check in the hot loop; unused bins stay zero.
type featureHist [256]int64

// histogram holds one node's histograms, one per feature.
type histogram []featureHist

// minParallelCells is the node size (rows × features) below which building a histogram on
// one goroutine beats starting several.
const minParallelCells = 1 << 16

// histChunkRows is the row-chunk size for building large nodes' histograms in parallel, and
// maxHistChunks caps the number of chunks (and partial histograms to add up).
const (
	histChunkRows = 4096
	maxHistChunks = 16
)

// histBuilder builds node histograms, in parallel where it pays off: a large node's rows are
// cut into chunks whose partial histograms are then added up, a smaller node's features are
// split between goroutines. The sums are integers, so the result is the same bits however
// the work is cut.
type histBuilder struct {
	data    *binnedData
	nbins   []int
	workers int
	pool    *histPool
	parts   []histogram
	sinks   [maxHistChunks]uint8 // accumulate's results, one slot per goroutine
}

// build fills h (which must be zero) with the sums over rows.
func (hb *histBuilder) build(h histogram, rows []int32, q []int64) {
	d, nf := hb.data, hb.data.numFeatures
	switch {
	case len(rows)*nf < minParallelCells:
		hb.sinks[0] = accumulate(h, d.bins, nf, 0, rows, q)
	case len(rows) >= 2*histChunkRows:
		k := min(maxHistChunks, len(rows)/histChunkRows)
		parts := hb.parts[:0]
		parts = append(parts, h)
		for range k - 1 {
			parts = append(parts, hb.pool.get())
		}
		hb.parts = parts
		parallelFor(k, hb.workers, func(c int) {
			hb.sinks[c] = accumulate(parts[c], d.bins, nf, 0, rows[c*len(rows)/k:(c+1)*len(rows)/k], q)
		})
		// Add the parts in chunk order; features are independent, so split those.
		parallelFor(hb.workers, hb.workers, func(w int) {
			for f := w * nf / hb.workers; f < (w+1)*nf/hb.workers; f++ {
				dst := &h[f]
				for _, p := range parts[1:] {
					src := &p[f]
					for b := range hb.nbins[f] {
						dst[b] += src[b]
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
			hb.sinks[g] = accumulate(h[f0:f1], d.bins, nf, f0, rows, q)
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
func accumulate(h histogram, bins []uint8, stride, f0 int, rows []int32, q []int64) (touch uint8) {
	nf := len(h)
	if n := len(rows); n > 0 && int(rows[n-1]-rows[0]) == n-1 {
		// Consecutive rows (the root when every row trains): memory is read in order, so
		// the prefetcher does what the gathering is for.
		accumulateRange(h, bins, stride, f0, int(rows[0]), int(rows[0])+n, q)
		return 0
	}
	var oq [gatherBlock]int64
	for len(rows) > 0 {
		block := rows[:min(len(rows), gatherBlock)]
		rows = rows[len(block):]
		for i, r := range block {
			oq[i] = q[r]
			// A row's bins may straddle two cache lines: touch both ends.
			touch |= bins[int(r)*stride+f0] | bins[int(r)*stride+f0+nf-1]
		}
		for i, r := range block {
			v := oq[i]
			row := bins[int(r)*stride+f0:][:nf]
			hh := h[:len(row)]
			k := 0
			// Four features per step: fewer loop branches, more independent updates in flight.
			for ; k+4 <= len(row); k += 4 {
				// Array pointers: one bounds check per four features.
				b4, h4 := (*[4]uint8)(row[k:]), (*[4]featureHist)(hh[k:])
				h4[0][b4[0]] += v
				h4[1][b4[1]] += v
				h4[2][b4[2]] += v
				h4[3][b4[3]] += v
			}
			for ; k < len(row); k++ {
				hh[k][row[k]] += v
			}
		}
	}
	return touch
}

// accumulateRange is accumulate for the rows lo..hi-1.
func accumulateRange(h histogram, bins []uint8, stride, f0, lo, hi int, q []int64) {
	nf := len(h)
	for r, v := range q[lo:hi] {
		row := bins[(lo+r)*stride+f0:][:nf]
		hh := h[:len(row)]
		k := 0
		for ; k+4 <= len(row); k += 4 {
			b4, h4 := (*[4]uint8)(row[k:]), (*[4]featureHist)(hh[k:])
			h4[0][b4[0]] += v
			h4[1][b4[1]] += v
			h4[2][b4[2]] += v
			h4[3][b4[3]] += v
		}
		for ; k < len(row); k++ {
			hh[k][row[k]] += v
		}
	}
}

// subtract sets dst = parent − child: the histogram of a node's other child, for the price
// of one pass over the bins instead of one over the rows.
func subtract(dst, parent, child histogram, nbins []int) {
	for f := range dst {
		d, p, c := &dst[f], &parent[f], &child[f]
		for b := range nbins[f] {
			d[b] = p[b] - c[b]
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
