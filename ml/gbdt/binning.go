package gbdt

import (
	"cmp"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"

	"github.com/flywheel-ml/flywheel/ml/dataset"
)

// binSampleRows caps the rows whose values fit the quantile edges: beyond a few hundred
// thousand the edges hardly move, while sorting every value of a large frame would cost more
// than several boosting rounds (LightGBM samples 200,000 rows too).
const binSampleRows = 200_000

// featureBins maps one feature's raw values to bins 0..nbins-1; the last bin holds the
// missing values (NaN, ±Inf, and for categorical features negative codes).
type featureBins struct {
	categorical bool
	// numeric: a value goes to the first bin i with value <= edges[i]; the last edge is
	// math.MaxFloat64, so every finite value has a bin.
	edges []float64
	keys  []uint64 // orderedKey of each edge, for binNumeric
	// categorical: bin i < len(codes) holds code codes[i]; rare codes (other, sorted) share
	// bin len(codes) when there are any.
	codes   []int32
	other   []int32
	codeBin map[int32]uint8
	// denseBin[c] is codeBin[c] for codes below len(denseBin): a slice index is several
	// times faster than a map lookup when binning every row.
	denseBin []uint8
	nbins    int // bins including the missing bin
}

func (fb *featureBins) missingBin() uint8 { return uint8(fb.nbins - 1) }

// valueBins is the number of bins that hold values (not the missing bin).
func (fb *featureBins) valueBins() int { return fb.nbins - 1 }

// isMissing reports NaN and ±Inf: v-v is 0 for every finite v and NaN otherwise.
func isMissing(v float64) bool { return v-v != 0 }

// bin maps a raw value to its bin.
func (fb *featureBins) bin(v float64) uint8 {
	if isMissing(v) {
		return fb.missingBin()
	}
	if fb.categorical {
		if v < 0 || v != math.Trunc(v) {
			return fb.missingBin()
		}
		if c := int(v); c < len(fb.denseBin) {
			return fb.denseBin[c]
		}
		if b, ok := fb.codeBin[int32(v)]; ok {
			return b
		}
		return fb.missingBin() // only reachable for codes not seen when fitting
	}
	// Branch-free lower bound: the comparison result is data-dependent and unpredictable, so
	// a conditional move beats a branch here.
	e := fb.edges
	base, n := 0, len(e)
	for n > 1 {
		half := n >> 1
		if e[base+half-1] < v {
			base += half
		}
		n -= half
	}
	return uint8(base)
}

// fitBins fits every feature's bins on the given rows of the frame (a deterministic sample
// of them when there are many).
func fitBins(f *dataset.Frame, rows []int32, p Params, rng *rand.Rand, workers int) []featureBins {
	sample := rows
	if len(rows) > binSampleRows {
		sample = sampleRows(rows, binSampleRows, rng)
	}
	out := make([]featureBins, len(f.Cols))
	parallelFor(len(f.Cols), workers, func(j int) {
		col := f.Cols[j]
		if f.Kinds[j] == dataset.Categorical {
			out[j] = fitCategorical(col, rows, p.MaxCategories)
			return
		}
		vals := make([]float64, 0, len(sample))
		for _, r := range sample {
			if v := col[r]; !isMissing(v) {
				vals = append(vals, v)
			}
		}
		slices.Sort(vals)
		edges := numericEdges(vals, p.MaxBins)
		keys := make([]uint64, len(edges))
		for i, e := range edges {
			keys[i] = orderedKey(e)
		}
		out[j] = featureBins{edges: edges, keys: keys, nbins: len(edges) + 1}
	})
	return out
}

// sampleRows picks k of rows at random (seeded), returned in ascending order for cache-friendly
// reads.
func sampleRows(rows []int32, k int, rng *rand.Rand) []int32 {
	s := slices.Clone(rows)
	for i := 0; i < k; i++ { // partial Fisher–Yates
		j := i + rng.IntN(len(s)-i)
		s[i], s[j] = s[j], s[i]
	}
	s = s[:k]
	slices.Sort(s)
	return s
}

// numericEdges returns at most maxBins upper bin edges for the sorted finite values: one bin
// per distinct value when there are few, otherwise bins of roughly equal counts, cut halfway
// between neighbouring distinct values so that unseen values in a gap split evenly.
func numericEdges(sorted []float64, maxBins int) []float64 {
	type run struct {
		v float64
		n int
	}
	distinct := 0
	for i := range sorted {
		if i == 0 || sorted[i] != sorted[i-1] {
			distinct++
		}
	}
	runs := make([]run, 0, distinct)
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j] == sorted[i] {
			j++
		}
		runs = append(runs, run{sorted[i], j - i})
		i = j
	}
	edges := make([]float64, 0, min(len(runs), maxBins))
	cut := func(i int) { edges = append(edges, midpoint(runs[i].v, runs[i+1].v)) }
	if len(runs) <= maxBins {
		for i := 0; i+1 < len(runs); i++ {
			cut(i)
		}
	} else {
		rest, binsLeft, inBin := len(sorted), maxBins, 0
		for i := 0; i+1 < len(runs) && binsLeft > 1; i++ {
			inBin += runs[i].n
			// Cut once this bin holds its share of what is left, or when every remaining
			// distinct value must get a bin of its own.
			if float64(inBin) >= float64(rest)/float64(binsLeft) || len(runs)-1-i < binsLeft {
				cut(i)
				rest -= inBin
				inBin = 0
				binsLeft--
			}
		}
	}
	return append(edges, math.MaxFloat64)
}

// midpoint lies in [a, b) for a < b, so that a goes to the lower bin and b to the upper.
func midpoint(a, b float64) float64 {
	m := a + (b-a)/2
	if m >= b || math.IsInf(m, 0) {
		return a
	}
	return m
}

// fitCategorical gives the maxCategories most frequent codes a bin each and pools the rest in
// an "other" bin. Counting all rows (not a sample) keeps every code seen in training known to
// the model, so that only truly unseen codes take the missing direction.
func fitCategorical(col []float64, rows []int32, maxCategories int) featureBins {
	counts := map[int32]int{}
	for _, r := range rows {
		v := col[r]
		if isMissing(v) || v < 0 {
			continue
		}
		counts[int32(v)]++
	}
	type cc struct {
		code int32
		n    int
	}
	all := make([]cc, 0, len(counts))
	for c, n := range counts {
		all = append(all, cc{c, n})
	}
	slices.SortFunc(all, func(a, b cc) int {
		if a.n != b.n {
			return cmp.Compare(b.n, a.n)
		}
		return cmp.Compare(a.code, b.code)
	})
	fb := featureBins{categorical: true, codeBin: make(map[int32]uint8, len(all))}
	for i, c := range all {
		if i < maxCategories {
			fb.codes = append(fb.codes, c.code)
			fb.codeBin[c.code] = uint8(i)
		} else {
			fb.other = append(fb.other, c.code)
			fb.codeBin[c.code] = uint8(maxCategories)
		}
	}
	slices.Sort(fb.other)
	fb.nbins = len(fb.codes) + 1
	if len(fb.other) > 0 {
		fb.nbins++
	}
	if len(all) > 0 {
		maxCode := slices.MaxFunc(all, func(a, b cc) int { return cmp.Compare(a.code, b.code) }).code
		if maxCode < 1<<16 {
			fb.denseBin = make([]uint8, maxCode+1)
			for c := range fb.denseBin {
				fb.denseBin[c] = fb.missingBin() // codes not seen in training
			}
			for c, bin := range fb.codeBin {
				fb.denseBin[c] = bin
			}
		}
	}
	return fb
}

// binnedData is the frame binned once, in two layouts. Row-major (bins[i*numFeatures+j] is
// feature j of row i) keeps a row's bins in one cache line, so building a histogram over a
// node's scattered rows touches one line per row rather than one per row and feature.
// Column-major (cols[j][i]) serves partitioning, which reads one feature of a node's rows:
// a column is a byte per row and mostly stays in cache, where the row-major reads would miss
// once per row.
type binnedData struct {
	numRows, numFeatures int
	bins                 []uint8
	cols                 [][]uint8
}

func binFrame(f *dataset.Frame, fbs []featureBins, workers int) *binnedData {
	n, nf := f.Rows(), len(f.Cols)
	d := &binnedData{numRows: n, numFeatures: nf, bins: make([]uint8, n*nf), cols: make([][]uint8, nf)}
	for j := range d.cols {
		d.cols[j] = make([]uint8, n)
	}
	// Split by rows, not features: workers writing different features of the same rows
	// would share cache lines.
	const chunk = 8192
	parallelFor((n+chunk-1)/chunk, workers, func(c int) {
		lo, hi := c*chunk, min(n, (c+1)*chunk)
		for j := range nf {
			col, fb, colOut := f.Cols[j][lo:hi], &fbs[j], d.cols[j][lo:hi]
			if fb.categorical {
				for i, v := range col {
					colOut[i] = fb.bin(v)
				}
			} else {
				fb.binNumeric(col, colOut)
			}
			out := d.bins[lo*nf+j:]
			for i, b := range colOut {
				out[i*nf] = b
			}
		}
	})
	return d
}

// orderedKey maps a non-NaN float64 to a uint64 in the same order (−0 and +0 alike), so
// that comparisons compile to integer compares and conditional moves.
func orderedKey(v float64) uint64 {
	if v == 0 {
		v = 0 // −0 → +0
	}
	u := math.Float64bits(v)
	if u>>63 != 0 {
		return ^u
	}
	return u | 1<<63
}

// binNumeric bins a numeric column four values at a time: each binary search is a chain of
// dependent loads and compares, and four independent chains keep the CPU busy. The compares
// are on integer keys, done with borrows rather than branches, which the data would make
// unpredictable (measured 25 ns a value with branches).
func (fb *featureBins) binNumeric(col []float64, out []uint8) {
	e := fb.keys
	i := 0
	for ; i+4 <= len(col); i += 4 {
		v := (*[4]float64)(col[i:])
		k0, k1, k2, k3 := orderedKey(v[0]), orderedKey(v[1]), orderedKey(v[2]), orderedKey(v[3])
		b0, b1, b2, b3 := 0, 0, 0, 0
		for n := len(e); n > 1; {
			half := n >> 1
			// The borrow of e − k is 1 exactly when e < k: advancing by half & −borrow has
			// no branch to mispredict (the compiler does not turn these ifs into cmovs).
			_, c0 := bits.Sub64(e[b0+half-1], k0, 0)
			_, c1 := bits.Sub64(e[b1+half-1], k1, 0)
			_, c2 := bits.Sub64(e[b2+half-1], k2, 0)
			_, c3 := bits.Sub64(e[b3+half-1], k3, 0)
			b0 += half & -int(c0)
			b1 += half & -int(c1)
			b2 += half & -int(c2)
			b3 += half & -int(c3)
			n -= half
		}
		o := (*[4]uint8)(out[i:])
		o[0], o[1], o[2], o[3] = uint8(b0), uint8(b1), uint8(b2), uint8(b3)
		for k := range 4 {
			if isMissing(v[k]) {
				o[k] = fb.missingBin()
			}
		}
	}
	for ; i < len(col); i++ {
		out[i] = fb.bin(col[i])
	}
}
