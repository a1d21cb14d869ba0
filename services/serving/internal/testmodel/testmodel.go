// Package testmodel builds small, real model artifacts for serving's tests: a logistic
// regression over a request field, a categorical request field and card_activity features.
package testmodel

import (
	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/ml/linear"
)

// Fraud returns an artifact of the fraud model: score = sigmoid(bias + w·inputs), inputs
// amount (request), channel (categorical request: web, pos) and card_activity:txn_count_1h
// (feature). Changing bias makes a different version.
func Fraud(bias float64) *artifact.Artifact {
	zero := 0.0
	return &artifact.Artifact{
		Model: "fraud", Task: "binary", Algorithm: artifact.Logistic, Threshold: 0.5,
		Signature: []artifact.Feature{
			{Name: "amount", Kind: "numeric", Source: "request"},
			{Name: "channel", Kind: "categorical", Source: "request", Vocabulary: []string{"web", "pos"}},
			{Name: "card_activity:txn_count_1h", Kind: "numeric", Source: "feature", Default: &zero},
		},
		Linear: &linear.Model{Kind: linear.Logistic, Intercept: bias, Weights: []float64{0.01, 1, 0.5},
			Inputs: []linear.Input{{Scale: 1}, {Categorical: true, Categories: []int32{0}, Offset: 1}, {Scale: 1, Offset: 2}}},
	}
}

// Encoded is Fraud(bias) encoded.
func Encoded(bias float64) []byte {
	b, err := artifact.Encode(Fraud(bias))
	if err != nil {
		panic(err)
	}
	return b
}
