package learner

import (
	"fmt"
	"math"
	"sort"

	"github.com/flywheel-ml/flywheel/ml/gbdt"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
)

// gbdtParams reads a spec's gbdt hyperparameters; an unknown key or a value of the wrong type
// is an error naming it.
func gbdtParams(spec *modelspec.Spec, seed uint64) (gbdt.Params, error) {
	objective := gbdt.Binary
	if spec.Task == modelspec.Regression {
		objective = gbdt.Regression
	}
	p := gbdt.DefaultParams(objective)
	p.Seed = seed
	ints := map[string]*int{"num_trees": &p.NumTrees, "max_depth": &p.MaxDepth, "max_leaves": &p.MaxLeaves,
		"min_samples_leaf": &p.MinSamplesLeaf, "max_bins": &p.MaxBins, "max_categories": &p.MaxCategories,
		"early_stopping_rounds": &p.EarlyStoppingRounds}
	floats := map[string]*float64{"learning_rate": &p.LearningRate, "l2": &p.L2, "min_hessian_leaf": &p.MinHessianLeaf,
		"validation_fraction": &p.ValidationFraction}
	if err := assign(spec.Algorithm.Params, ints, floats); err != nil {
		return p, err
	}
	if p.EarlyStoppingRounds > 0 && p.ValidationFraction == 0 {
		p.ValidationFraction = 0.1 // early stopping needs a validation split
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("algorithm.params: %w", err)
	}
	return p, nil
}

func assign(params map[string]any, ints map[string]*int, floats map[string]*float64) error {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := params[k]
		var f float64
		switch x := v.(type) {
		case int:
			f = float64(x)
		case float64:
			f = x
		default:
			return fmt.Errorf("algorithm.params.%s: %v is not a number", k, v)
		}
		if dst, ok := ints[k]; ok {
			if f != math.Trunc(f) {
				return fmt.Errorf("algorithm.params.%s: %v is not a whole number", k, v)
			}
			*dst = int(f)
			continue
		}
		if dst, ok := floats[k]; ok {
			*dst = f
			continue
		}
		known := make([]string, 0, len(ints)+len(floats))
		for n := range ints {
			known = append(known, n)
		}
		for n := range floats {
			known = append(known, n)
		}
		sort.Strings(known)
		return fmt.Errorf("algorithm.params.%s: unknown parameter; known: %v", k, known)
	}
	return nil
}
