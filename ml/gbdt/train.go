package gbdt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/flywheel-ml/flywheel/ml/dataset"
)

// Round reports one boosting round to Train's progress callback.
type Round struct {
	Round     int     // 1-based: the number of trees so far
	TrainLoss float64 // mean loss on the training rows: log loss (binary) or squared error (regression)
	// ValidationLoss is the same on the held-out rows; NaN without a validation split.
	ValidationLoss float64
}

// rowChunk is the unit of parallel per-row work. Losses are summed per chunk and the chunk
// sums in order, so the totals do not depend on the number of workers.
const rowChunk = 1 << 15

// Train fits a model to the frame's features and label. progress, when not nil, is called
// after every round (computing the training loss costs an extra pass over the rows, so it is
// only computed then). Cancelling ctx stops training between rounds with ctx's error.
func Train(ctx context.Context, train *dataset.Frame, p Params, progress func(Round)) (*Model, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.resolved()
	if train == nil {
		return nil, errors.New("gbdt: no training frame")
	}
	if err := train.Validate(); err != nil {
		return nil, fmt.Errorf("gbdt: training frame: %w", err)
	}
	n := train.Rows()
	switch {
	case n == 0:
		return nil, fmt.Errorf("gbdt: training frame: %w", dataset.ErrNoRows)
	case len(train.Cols) == 0:
		return nil, errors.New("gbdt: training frame has no features")
	case train.Label == nil:
		return nil, errors.New("gbdt: training frame has no label")
	case n > math.MaxInt32:
		return nil, fmt.Errorf("gbdt: %d rows is more than the %d supported", n, math.MaxInt32)
	}
	if err := checkLabels(p.Objective, train.Label); err != nil {
		return nil, err
	}

	rng := rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15))
	trainRows, validRows := splitRows(n, p.ValidationFraction, rng)
	if p.ValidationFraction > 0 && (len(validRows) == 0 || len(trainRows) == 0) {
		return nil, fmt.Errorf("gbdt: ValidationFraction %v of %d rows leaves an empty training or validation set", p.ValidationFraction, n)
	}
	feats := fitBins(train, trainRows, p, rng, p.Workers)
	data := binFrame(train, feats, p.Workers)

	obj := newObjective(p.Objective)
	b := &booster{
		p: p, obj: obj, label: train.Label, data: data,
		trainRows: trainRows, validRows: validRows,
		margin: make([]float64, n), gh: make([]gradPair, n), qz: newQuantizer(n),
	}
	base := obj.base(trainRows, train.Label)
	for i := range b.margin {
		b.margin[i] = base
	}
	g := newGrower(data, feats, p, b.qz, trainRows)

	m := &Model{Objective: p.Objective, NumFeatures: len(train.Cols), Features: exportFeatures(feats), BaseScore: base}
	bestLoss, bestRound := math.Inf(1), 0
	b.gradients()
	for round := 1; round <= p.NumTrees; round++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("gbdt: training stopped after %d of %d rounds: %w", round-1, p.NumTrees, err)
		}
		nodes := g.grow(b.qz.q, trainRows)
		b.apply(nodes, g.rows)
		m.Trees = append(m.Trees, exportTree(nodes, feats))

		last := round == p.NumTrees
		r := Round{Round: round, TrainLoss: math.NaN(), ValidationLoss: math.NaN()}
		if !last {
			b.gradients()
		}
		if progress != nil {
			r.TrainLoss = b.meanLoss(trainRows)
		}
		if len(validRows) > 0 && (progress != nil || p.EarlyStoppingRounds > 0) {
			r.ValidationLoss = b.meanLoss(validRows)
		}
		if progress != nil {
			progress(r)
		}
		if p.EarlyStoppingRounds > 0 {
			if r.ValidationLoss < bestLoss {
				bestLoss, bestRound = r.ValidationLoss, round
			} else if round-bestRound >= p.EarlyStoppingRounds {
				m.Trees = m.Trees[:bestRound]
				m.BestIteration = bestRound
				break
			}
		}
	}
	m.fast = compile(m)
	return m, nil
}

// splitRows shuffles the rows with the seeded generator and holds out frac of them; both
// sets come back in ascending order.
func splitRows(n int, frac float64, rng *rand.Rand) (train, valid []int32) {
	all := make([]int32, n)
	for i := range all {
		all[i] = int32(i)
	}
	nv := int(math.Round(frac * float64(n)))
	if nv == 0 {
		return all, nil
	}
	isValid := make([]bool, n)
	for _, i := range rng.Perm(n)[:nv] {
		isValid[i] = true
	}
	train = make([]int32, 0, n-nv)
	valid = make([]int32, 0, nv)
	for i, v := range isValid {
		if v {
			valid = append(valid, int32(i))
		} else {
			train = append(train, int32(i))
		}
	}
	return train, valid
}

// booster holds the per-row state of boosting.
type booster struct {
	p                    Params
	obj                  objective
	label                []float64
	data                 *binnedData
	trainRows, validRows []int32
	margin               []float64
	gh                   []gradPair
	qz                   *quantizer
}

// gradients recomputes the gradients of the training rows at the current margins and
// quantises them for the next tree.
func (b *booster) gradients() {
	rows := b.trainRows
	chunks := (len(rows) + rowChunk - 1) / rowChunk
	if fr, ok := b.obj.(fixedRangeObjective); ok {
		maxAbsG, minH, maxH := fr.fixedRanges()
		b.qz.setScales(len(rows), maxAbsG, minH, maxH)
		dense := len(rows) == len(b.margin) // no validation split: rows are 0..n-1
		parallelFor(chunks, b.p.Workers, func(c int) {
			lo, hi := c*rowChunk, min(len(rows), (c+1)*rowChunk)
			if dense {
				fr.denseQuantizedGradients(lo, hi, b.margin, b.label, b.qz)
			} else {
				fr.quantizedGradients(rows[lo:hi], b.margin, b.label, b.qz)
			}
		})
		return
	}
	type ranges struct{ maxAbsG, minH, maxH float64 }
	rs := make([]ranges, chunks)
	parallelFor(chunks, b.p.Workers, func(c int) {
		part := rows[c*rowChunk : min(len(rows), (c+1)*rowChunk)]
		b.obj.gradients(part, b.margin, b.label, b.gh)
		r := ranges{0, math.Inf(1), 0}
		for _, i := range part {
			p := b.gh[i]
			r.maxAbsG, r.minH, r.maxH = max(r.maxAbsG, math.Abs(p.G)), min(r.minH, p.H), max(r.maxH, p.H)
		}
		rs[c] = r
	})
	all := ranges{0, math.Inf(1), 0}
	for _, r := range rs {
		all.maxAbsG, all.minH, all.maxH = max(all.maxAbsG, r.maxAbsG), min(all.minH, r.minH), max(all.maxH, r.maxH)
	}
	b.qz.setScales(len(rows), all.maxAbsG, all.minH, all.maxH)
	parallelFor(chunks, b.p.Workers, func(c int) {
		b.qz.quantize(rows[c*rowChunk:min(len(rows), (c+1)*rowChunk)], b.gh)
	})
}

func (b *booster) meanLoss(rows []int32) float64 {
	sums := make([]float64, (len(rows)+rowChunk-1)/rowChunk)
	parallelFor(len(sums), b.p.Workers, func(c int) {
		sums[c] = b.obj.loss(rows[c*rowChunk:min(len(rows), (c+1)*rowChunk)], b.margin, b.label)
	})
	s := 0.0
	for _, v := range sums {
		s += v
	}
	return s / float64(len(rows))
}

// apply sets the leaf values of a grown tree and adds them to the margins: the training rows
// through the leaves' row ranges, the validation rows by walking the tree over their bins.
func (b *booster) apply(nodes []treeNode, partitioned []int32) {
	var leaves []*treeNode
	for i := range nodes {
		if n := &nodes[i]; n.leaf {
			g, h := b.qz.unpack(n.stats)
			n.value = -g / (h + b.p.L2) * b.p.LearningRate
			leaves = append(leaves, n)
		}
	}
	// Each goroutine takes a range of row ids across all leaves (a leaf's rows are
	// ascending): goroutines taking whole leaves, whose rows interleave, would keep stealing
	// each other's cache lines of margin (measured 4× slower than one goroutine).
	w := b.p.Workers
	parallelFor(w, w, func(k int) {
		lo, hi := int32(k*len(b.margin)/w), int32((k+1)*len(b.margin)/w)
		for _, n := range leaves {
			rows := partitioned[n.start:n.end]
			from, _ := slices.BinarySearch(rows, lo)
			to, _ := slices.BinarySearch(rows, hi)
			for _, r := range rows[from:to] {
				b.margin[r] += n.value
			}
		}
	})
	bins, nf := b.data.bins, b.data.numFeatures
	valid := b.validRows
	parallelFor((len(valid)+rowChunk-1)/rowChunk, b.p.Workers, func(c int) {
		for _, r := range valid[c*rowChunk : min(len(valid), (c+1)*rowChunk)] {
			i := 0
			for !nodes[i].leaf {
				s := &nodes[i].split
				if s.left.has(bins[int(r)*nf+s.feature]) {
					i = nodes[i].left
				} else {
					i = nodes[i].right
				}
			}
			b.margin[r] += nodes[i].value
		}
	})
}
