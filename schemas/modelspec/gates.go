package modelspec

import (
	"fmt"
	"math"
	"slices"
)

// Metric names a gate may use: the evaluation metrics the trainer computes.
var (
	BinaryMetrics     = []string{"auc", "pr_auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1"}
	RegressionMetrics = []string{"rmse", "mae", "r2"}
)

// Gate is one metric's promotion condition, with MLflow's MetricThreshold semantics:
//   - Threshold: the candidate's value must be >= it (greater_is_better) or <= it.
//   - MinAbsoluteChange (> 0): candidate >= champion + change (or <= champion - change).
//   - MinRelativeChange (0..1): (candidate - champion) / champion >= change (or
//     (champion - candidate) / champion >= change); a champion value of 0 falls back to a
//     plain comparison, as MLflow does.
//
// The comparisons against the champion apply only when there is one.
type Gate struct {
	Metric            string   `yaml:"metric" json:"metric"`
	Threshold         *float64 `yaml:"threshold,omitempty" json:"threshold,omitempty"`
	MinAbsoluteChange *float64 `yaml:"min_absolute_change,omitempty" json:"min_absolute_change,omitempty"`
	MinRelativeChange *float64 `yaml:"min_relative_change,omitempty" json:"min_relative_change,omitempty"`
	GreaterIsBetter   *bool    `yaml:"greater_is_better" json:"greater_is_better"`
}

func (g Gate) validate(where, task string) error {
	names := BinaryMetrics
	if task == Regression {
		names = RegressionMetrics
	}
	if !slices.Contains(names, g.Metric) {
		return fieldErr(where+".metric", "%q is not a %s metric; use one of %v", g.Metric, task, names)
	}
	if g.GreaterIsBetter == nil {
		return fieldErr(where+".greater_is_better", "is required (true for auc, false for log_loss)")
	}
	if g.Threshold == nil && g.MinAbsoluteChange == nil && g.MinRelativeChange == nil {
		return fieldErr(where, "needs threshold, min_absolute_change or min_relative_change")
	}
	if c := g.MinAbsoluteChange; c != nil && !(*c > 0) {
		return fieldErr(where+".min_absolute_change", "must be a positive number (MLflow semantics), got %v", *c)
	}
	if c := g.MinRelativeChange; c != nil && !(*c >= 0 && *c <= 1) {
		return fieldErr(where+".min_relative_change", "must be between 0 and 1 (MLflow semantics), got %v", *c)
	}
	if t := g.Threshold; t != nil && (math.IsNaN(*t) || math.IsInf(*t, 0)) {
		return fieldErr(where+".threshold", "must be a finite number")
	}
	return nil
}

// GateResult is the verdict of one gate, with the figures behind it.
type GateResult struct {
	Metric    string   `json:"metric"`
	Candidate float64  `json:"candidate"`
	Champion  *float64 `json:"champion,omitempty"`
	Passed    bool     `json:"passed"`
	// Failures says which conditions failed and by how much, e.g.
	// "threshold: 0.51 < 0.7 (short by 0.19)".
	Failures []string `json:"failures,omitempty"`
}

// Evaluate applies the gates to a candidate's metrics and, when there is a champion, to the
// champion's metrics on the same holdout. A metric missing from the candidate fails its gate.
func Evaluate(gates []Gate, candidate map[string]float64, champion map[string]float64) []GateResult {
	out := make([]GateResult, 0, len(gates))
	for _, g := range gates {
		out = append(out, g.evaluate(candidate, champion))
	}
	return out
}

// Passed reports whether every gate passed.
func Passed(results []GateResult) bool {
	for _, r := range results {
		if !r.Passed {
			return false
		}
	}
	return true
}

func (g Gate) evaluate(candidate, champion map[string]float64) GateResult {
	res := GateResult{Metric: g.Metric, Passed: true}
	c, ok := candidate[g.Metric]
	if !ok || math.IsNaN(c) {
		res.Passed = false
		res.Failures = append(res.Failures, "the candidate has no value for "+g.Metric)
		return res
	}
	res.Candidate = c
	better := *g.GreaterIsBetter
	atLeast := func(v, bound float64) bool { // v is on the good side of bound (or equal)
		if better {
			return v >= bound
		}
		return v <= bound
	}
	cmp := ">="
	if !better {
		cmp = "<="
	}
	if t := g.Threshold; t != nil && !atLeast(c, *t) {
		res.Failures = append(res.Failures, fmt.Sprintf("threshold: %.6g is not %s %.6g (off by %.3g)", c, cmp, *t, math.Abs(c-*t)))
	}
	base, hasChampion := champion[g.Metric]
	if hasChampion && !math.IsNaN(base) {
		res.Champion = &base
		if d := g.MinAbsoluteChange; d != nil {
			bound := base + *d
			if !better {
				bound = base - *d
			}
			if !atLeast(c, bound) {
				res.Failures = append(res.Failures, fmt.Sprintf("min_absolute_change: %.6g is not %s champion %.6g %s %.3g (off by %.3g)",
					c, cmp, base, map[bool]string{true: "+", false: "-"}[better], *d, math.Abs(c-bound)))
			}
		}
		if r := g.MinRelativeChange; r != nil {
			if base == 0 {
				if !atLeast(c, base) {
					res.Failures = append(res.Failures, fmt.Sprintf("min_relative_change: %.6g is not %s champion %.6g", c, cmp, base))
				}
			} else {
				change := (c - base) / base
				if !better {
					change = (base - c) / base
				}
				if change < *r {
					res.Failures = append(res.Failures, fmt.Sprintf("min_relative_change: relative change %.4g against champion %.6g is below %.4g", change, base, *r))
				}
			}
		}
	}
	res.Passed = len(res.Failures) == 0
	return res
}
