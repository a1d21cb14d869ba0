package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
	"github.com/flywheel-ml/flywheel/services/trainer/runs"
)

// Validation is the gates' verdict on a registered version against the current champion,
// both scored on the holdout of a dataset built now — what `flywheel models validate` prints.
type Validation struct {
	Model     string                 `json:"model"`
	Candidate int                    `json:"candidate"`
	Champion  int                    `json:"champion,omitempty"`
	Passed    bool                   `json:"passed"`
	Gates     []modelspec.GateResult `json:"gates"`
	Metrics   map[string]float64     `json:"metrics"`
	Baseline  map[string]float64     `json:"champion_metrics,omitempty"`
	Rows      int                    `json:"holdout_rows"`
}

// Validate evaluates the gates for version candidate of model, so any CI can ask whether a
// version would be promoted.
func (p *Pipeline) Validate(ctx context.Context, model string, candidate int) (Validation, error) {
	spec, ok := p.specs[model]
	out := Validation{Model: model, Candidate: candidate}
	if !ok {
		return out, fmt.Errorf("%w %q: no training spec", runs.ErrUnknownModel, model)
	}
	built, test, err := p.holdout(ctx, spec)
	if err != nil {
		return out, err
	}
	out.Rows = len(test)
	labels := make([]float64, len(test))
	for i, r := range test {
		labels[i] = built.Frame.Label[r]
	}
	cand, err := p.champion(ctx, model, candidate)
	if err != nil {
		return out, err
	}
	scores, err := cand.Score(built, test)
	if err != nil {
		return out, fmt.Errorf("score version %d: %w", candidate, err)
	}
	out.Metrics = p.evaluate(spec.Task, labels, scores, spec.Threshold)
	aliases, err := p.registry.Aliases(ctx, model)
	if err != nil {
		return out, err
	}
	if v, ok := aliases["champion"]; ok && v != candidate {
		champ, err := p.champion(ctx, model, v)
		if err != nil {
			return out, err
		}
		cs, err := champ.Score(built, test)
		if err != nil {
			return out, fmt.Errorf("score champion version %d: %w", v, err)
		}
		out.Champion, out.Baseline = v, p.evaluate(spec.Task, labels, cs, spec.Threshold)
	}
	out.Gates = modelspec.Evaluate(spec.Gates, out.Metrics, out.Baseline)
	out.Passed = modelspec.Passed(out.Gates)
	return out, nil
}

// holdout builds the spec's dataset as of now and returns it with its test rows.
func (p *Pipeline) holdout(ctx context.Context, spec *modelspec.Spec) (*dataset.Built, []int, error) {
	end := p.now().UTC()
	events, labels, err := p.events.Load(ctx, spec, dataset.Window{From: end.Add(-time.Duration(spec.Training.Window)), To: end})
	if err != nil {
		return nil, nil, err
	}
	examples, _, err := dataset.Join(spec, events, labels)
	if err != nil {
		return nil, nil, err
	}
	built, err := dataset.Build(ctx, spec, examples, p.features)
	if err != nil {
		return nil, nil, err
	}
	if _, err := dataset.Check(spec, built); err != nil {
		return nil, nil, err
	}
	_, test, err := dataset.Split(spec, built)
	return built, test, err
}
