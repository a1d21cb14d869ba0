package artifact

import (
	"errors"
	"fmt"

	"github.com/flywheel-ml/flywheel/ml/forest"
)

// Imported tree ensembles (ml/forest): models trained by LightGBM or XGBoost, scored by
// Flywheel with the trainer's own split and missing-value rules.
const (
	LightGBM = "lightgbm"
	XGBoost  = "xgboost"
)

// Multiclass is the task of a forest with K ≥ 2 outputs (softmax or one-vs-all
// probabilities); Predictor().Predict gives class 0's, forest.Model.PredictInto all K.
const Multiclass = "multiclass"

func isForest(algorithm string) bool { return algorithm == LightGBM || algorithm == XGBoost }

// FromForest builds an artifact around an imported forest: a signature of the model's
// features in its order, numeric unless categorical[i] (categorical features have no
// vocabulary: their values are the integer codes the model was trained on), the task
// (binary, regression or multiclass) and, for binary models, the decision threshold.
// Each feature's source is "request:<name>"; callers may change it before encoding.
func FromForest(model, algorithm string, m *forest.Model, featureNames []string, categorical []bool, task string, threshold float64) (*Artifact, error) {
	if m == nil {
		return nil, errors.New("artifact: no forest")
	}
	if len(featureNames) != m.NumFeatures {
		return nil, fmt.Errorf("artifact: %d feature names for a forest of %d features", len(featureNames), m.NumFeatures)
	}
	if categorical != nil && len(categorical) != m.NumFeatures {
		return nil, fmt.Errorf("artifact: %d categorical flags for %d features", len(categorical), m.NumFeatures)
	}
	a := &Artifact{Format: Format, Model: model, Task: task, Algorithm: algorithm, Threshold: threshold, Forest: m}
	for i, name := range featureNames {
		kind := "numeric"
		if categorical != nil && categorical[i] {
			kind = "categorical"
		}
		a.Signature = append(a.Signature, Feature{Name: name, Kind: kind, Source: "request:" + name})
	}
	if err := a.validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// validateForest checks the forest against the task and the signature.
func (a *Artifact) validateForest() error {
	m := a.Forest
	if m == nil {
		return fmt.Errorf("artifact: algorithm %s without a forest", a.Algorithm)
	}
	if err := m.Validate(len(a.Signature)); err != nil {
		return fmt.Errorf("artifact: %w", err)
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
		if m.NumOutputs < 2 || (m.Transform != forest.Softmax && m.Transform != forest.Sigmoid) {
			return fmt.Errorf("artifact: a multiclass task with a forest of %d outputs and transform %s (want ≥ 2 and softmax or sigmoid)", m.NumOutputs, m.Transform)
		}
	}
	for i, c := range m.CategoricalFeatures() {
		if c && a.Signature[i].Kind != "categorical" {
			return fmt.Errorf("artifact: the forest splits on feature %s as categorical, the signature says %s", a.Signature[i].Name, a.Signature[i].Kind)
		}
	}
	return nil
}
