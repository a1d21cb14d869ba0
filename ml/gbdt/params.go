package gbdt

import (
	"fmt"
	"math"
	"runtime"
)

// Objectives.
const (
	Binary     = "binary"     // labels 0/1, logistic loss, Predict gives a probability
	Regression = "regression" // squared error, Predict gives the value
)

// Params configure Train. Start from DefaultParams; fields documented as "0 means ..." may be
// left zero.
type Params struct {
	Objective    string  // Binary or Regression
	NumTrees     int     // boosting rounds (trees), ≥ 1
	LearningRate float64 // shrinkage applied to every leaf value, in (0, 1]

	MaxDepth  int // deepest level of a leaf (root is depth 0); 0 means unlimited
	MaxLeaves int // leaves per tree; 0 means 2^MaxDepth (31 when MaxDepth is 0)
	// MinSamplesLeaf is the rows a leaf must keep, ≥ 1. Split candidates estimate a side's
	// rows from its hessian sum (exact for regression; for binary, where hessians differ
	// between rows, an estimate, as in LightGBM), so a binary leaf may end a little under it.
	MinSamplesLeaf int
	MinHessianLeaf float64 // hessian sum a leaf must keep (min_child_weight), ≥ 0
	L2             float64 // L2 regularisation λ of leaf values, ≥ 0

	MaxBins       int // value bins per numeric feature, 2..255; 0 means 255. Missing values get a bin of their own.
	MaxCategories int // categories per categorical feature kept as their own bin, 1..254; 0 means 254. The rest share an "other" bin.

	// ValidationFraction of the rows (a seeded random split) is held out and scored every
	// round; 0 means no validation split. EarlyStoppingRounds > 0 stops training once the
	// validation loss has not improved for that many rounds and keeps the best trees.
	ValidationFraction  float64
	EarlyStoppingRounds int

	Seed    uint64 // seeds the binning sample and the validation split
	Workers int    // goroutines; 0 means GOMAXPROCS. Does not change the model.
}

// DefaultParams are sensible defaults for the objective: 100 trees of depth 6, learning rate
// 0.1, λ = 1, at least 20 rows per leaf.
func DefaultParams(objective string) Params {
	return Params{
		Objective:      objective,
		NumTrees:       100,
		LearningRate:   0.1,
		MaxDepth:       6,
		MinSamplesLeaf: 20,
		MinHessianLeaf: 1e-3,
		L2:             1,
	}
}

// Validate reports the first invalid parameter, by name.
func (p Params) Validate() error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case p.Objective != Binary && p.Objective != Regression:
		return fmt.Errorf("gbdt: Objective %q: want %q or %q", p.Objective, Binary, Regression)
	case p.NumTrees < 1:
		return fmt.Errorf("gbdt: NumTrees %d: want at least 1", p.NumTrees)
	case !finite(p.LearningRate) || p.LearningRate <= 0 || p.LearningRate > 1:
		return fmt.Errorf("gbdt: LearningRate %v: want a value in (0, 1]", p.LearningRate)
	case p.MaxDepth < 0 || p.MaxDepth > 30:
		return fmt.Errorf("gbdt: MaxDepth %d: want 0 (unlimited) to 30", p.MaxDepth)
	case p.MaxLeaves < 0 || p.MaxLeaves == 1 || p.MaxLeaves > 1<<16:
		return fmt.Errorf("gbdt: MaxLeaves %d: want 0 (from MaxDepth) or 2 to 65536", p.MaxLeaves)
	case p.MinSamplesLeaf < 1:
		return fmt.Errorf("gbdt: MinSamplesLeaf %d: want at least 1", p.MinSamplesLeaf)
	case !finite(p.MinHessianLeaf) || p.MinHessianLeaf < 0:
		return fmt.Errorf("gbdt: MinHessianLeaf %v: want a finite value ≥ 0", p.MinHessianLeaf)
	case !finite(p.L2) || p.L2 < 0:
		return fmt.Errorf("gbdt: L2 %v: want a finite value ≥ 0", p.L2)
	case p.MaxBins != 0 && (p.MaxBins < 2 || p.MaxBins > 255):
		return fmt.Errorf("gbdt: MaxBins %d: want 0 (255) or 2 to 255", p.MaxBins)
	case p.MaxCategories < 0 || p.MaxCategories > 254:
		return fmt.Errorf("gbdt: MaxCategories %d: want 0 (254) or 1 to 254", p.MaxCategories)
	case !finite(p.ValidationFraction) || p.ValidationFraction < 0 || p.ValidationFraction >= 1:
		return fmt.Errorf("gbdt: ValidationFraction %v: want a value in [0, 1)", p.ValidationFraction)
	case p.EarlyStoppingRounds < 0:
		return fmt.Errorf("gbdt: EarlyStoppingRounds %d: want 0 (off) or more", p.EarlyStoppingRounds)
	case p.EarlyStoppingRounds > 0 && p.ValidationFraction == 0:
		return fmt.Errorf("gbdt: EarlyStoppingRounds %d needs a ValidationFraction > 0 to score rounds on", p.EarlyStoppingRounds)
	case p.Workers < 0:
		return fmt.Errorf("gbdt: Workers %d: want 0 (GOMAXPROCS) or more", p.Workers)
	}
	return nil
}

// resolved fills in the fields whose zero value means a default.
func (p Params) resolved() Params {
	if p.MaxLeaves == 0 {
		p.MaxLeaves = 31
		if p.MaxDepth > 0 && p.MaxDepth < 16 {
			p.MaxLeaves = 1 << p.MaxDepth
		} else if p.MaxDepth >= 16 {
			p.MaxLeaves = 1 << 16
		}
	}
	if p.MaxBins == 0 {
		p.MaxBins = 255
	}
	if p.MaxCategories == 0 {
		p.MaxCategories = 254
	}
	if p.Workers == 0 {
		p.Workers = runtime.GOMAXPROCS(0)
	}
	return p
}
