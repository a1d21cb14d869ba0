package artifact

import (
	"errors"
	"fmt"

	"github.com/flywheel-ml/flywheel/ml/forest"
)

// Imported tree ensembles (ml/forest): models trained by LightGBM or XGBoost, scored by
// Flywheel with the trainer's own split and missing-value rules. The algorithm is the
// forest's Trainer.
const (
	LightGBM = forest.LightGBM
	XGBoost  = forest.XGBoost
)

// Multiclass is the task of a forest with Classes ≥ 2 outputs (softmax or one-vs-all
// probabilities): Predictor().Predict gives class 0's probability, forest.Model's
// PredictInto all of them.
const Multiclass = "multiclass"

func isForest(algorithm string) bool { return algorithm == LightGBM || algorithm == XGBoost }

// FromForest builds an artifact around an imported forest (lightgbm.Parse,
// xgboost.Parse): algorithm the forest's trainer; task binary (one sigmoid output; the
// threshold, in (0, 1), is its decision threshold), regression (one identity or exp output:
// squared error, poisson, gamma, tweedie …) or multiclass (K ≥ 2 softmax or one-vs-all
// sigmoid outputs, Classes K) — the threshold is ignored for the last two; a signature of the model's features in its order, each "request:<name>", categorical
// for the features the trainer was told are categorical or splits on as categories (no
// vocabulary: their values are the integer codes the model was trained on), numeric
// otherwise (set m.Categorical to declare more). Callers may change sources, add defaults,
// params, metrics and a profile before encoding. It validates m (which prepares it for
// scoring). A forest with several identity or exp outputs (a custom objective's raw
// scores) is refused: it is no classifier.
func FromForest(model string, m *forest.Model, featureNames []string, threshold float64) (*Artifact, error) {
	if m == nil {
		return nil, errors.New("artifact: no forest")
	}
	if len(featureNames) != m.NumFeatures {
		return nil, fmt.Errorf("artifact: %d feature names for a forest of %d features", len(featureNames), m.NumFeatures)
	}
	if !isForest(m.Trainer) {
		return nil, fmt.Errorf("artifact: the forest has no trainer (%q; want %s or %s)", m.Trainer, LightGBM, XGBoost)
	}
	if err := m.Validate(m.NumFeatures); err != nil {
		return nil, fmt.Errorf("artifact: %w", err)
	}
	a := &Artifact{Format: Format, Model: model, Algorithm: m.Trainer, Forest: m}
	switch {
	case m.NumOutputs == 1 && m.Transform == forest.Sigmoid:
		a.Task, a.Threshold = "binary", threshold
	case m.NumOutputs == 1:
		a.Task = "regression"
	default:
		a.Task, a.Classes = Multiclass, m.NumOutputs
	}
	cat := m.CategoricalFeatures()
	for i, name := range featureNames {
		kind := "numeric"
		if cat[i] {
			kind = "categorical"
		}
		a.Signature = append(a.Signature, Feature{Name: name, Kind: kind, Source: "request:" + name})
	}
	if err := a.validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// validateForest checks the forest against the algorithm, the task and the signature. It
// only reads the forest (Check): Encode runs it on artifacts that may be serving.
func (a *Artifact) validateForest() error {
	m := a.Forest
	if m == nil {
		return fmt.Errorf("artifact: algorithm %s without a forest", a.Algorithm)
	}
	if err := m.Check(len(a.Signature)); err != nil {
		return fmt.Errorf("artifact: %w", err)
	}
	if m.Trainer != a.Algorithm {
		return fmt.Errorf("artifact: algorithm %s with a forest trained by %q", a.Algorithm, m.Trainer)
	}
	switch a.Task {
	case "binary":
		if m.NumOutputs != 1 || m.Transform != forest.Sigmoid {
			return fmt.Errorf("artifact: a binary task with a forest of %d outputs and transform %s (want 1 and sigmoid)", m.NumOutputs, m.Transform)
		}
	case "regression":
		if m.NumOutputs != 1 || (m.Transform != forest.Identity && m.Transform != forest.Exp) {
			return fmt.Errorf("artifact: a regression task with a forest of %d outputs and transform %s (want 1 and identity or exp)", m.NumOutputs, m.Transform)
		}
	case Multiclass:
		if m.NumOutputs != a.Classes || (m.Transform != forest.Softmax && m.Transform != forest.Sigmoid) {
			return fmt.Errorf("artifact: a multiclass task of %d classes with a forest of %d outputs and transform %s (want %d and softmax or sigmoid)",
				a.Classes, m.NumOutputs, m.Transform, a.Classes)
		}
	}
	for i, c := range m.CategoricalFeatures() {
		if c && a.Signature[i].Kind != "categorical" {
			return fmt.Errorf("artifact: the forest reads feature %s as categorical, the signature says %s", a.Signature[i].Name, a.Signature[i].Kind)
		}
	}
	return nil
}
