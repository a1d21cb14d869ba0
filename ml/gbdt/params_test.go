package gbdt_test

import (
	"math"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/gbdt"
)

func TestParamsValidate(t *testing.T) {
	t.Parallel()
	for _, obj := range []string{gbdt.Binary, gbdt.Regression} {
		if err := gbdt.DefaultParams(obj).Validate(); err != nil {
			t.Errorf("DefaultParams(%q): %v", obj, err)
		}
	}
	for _, c := range []struct {
		field string
		set   func(*gbdt.Params)
	}{
		{"Objective", func(p *gbdt.Params) { p.Objective = "multiclass" }},
		{"NumTrees", func(p *gbdt.Params) { p.NumTrees = 0 }},
		{"LearningRate", func(p *gbdt.Params) { p.LearningRate = 0 }},
		{"LearningRate", func(p *gbdt.Params) { p.LearningRate = math.NaN() }},
		{"MaxDepth", func(p *gbdt.Params) { p.MaxDepth = -1 }},
		{"MaxLeaves", func(p *gbdt.Params) { p.MaxLeaves = 1 }},
		{"MinSamplesLeaf", func(p *gbdt.Params) { p.MinSamplesLeaf = 0 }},
		{"MinHessianLeaf", func(p *gbdt.Params) { p.MinHessianLeaf = -1 }},
		{"L2", func(p *gbdt.Params) { p.L2 = math.Inf(1) }},
		{"MaxBins", func(p *gbdt.Params) { p.MaxBins = 256 }},
		{"MaxBins", func(p *gbdt.Params) { p.MaxBins = 1 }},
		{"MaxCategories", func(p *gbdt.Params) { p.MaxCategories = 255 }},
		{"ValidationFraction", func(p *gbdt.Params) { p.ValidationFraction = 1 }},
		{"EarlyStoppingRounds", func(p *gbdt.Params) { p.EarlyStoppingRounds = -1 }},
		{"EarlyStoppingRounds", func(p *gbdt.Params) { p.EarlyStoppingRounds = 5 }}, // without a validation split
		{"Workers", func(p *gbdt.Params) { p.Workers = -2 }},
	} {
		p := gbdt.DefaultParams(gbdt.Binary)
		c.set(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("invalid %s: Validate = %v, want an error naming %s", c.field, err, c.field)
		}
	}
}
