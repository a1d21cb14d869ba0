// Package artifact is Flywheel's model artifact: one self-describing, versioned file holding
// what is needed to serve, monitor and audit a model — the signature (features, kinds, order,
// categorical vocabularies), the decision threshold, the training parameters, the holdout
// metrics, the reference profile, and the model itself.
//
// Format 1: the line "flywheel-model 1\n", then one JSON object (the Artifact). Encoding is
// deterministic — struct fields in declaration order, map keys sorted, no timestamps — so the
// same model gives the same bytes and its sha256 names it. A reader refuses other formats,
// files over MaxBytes, and anything inconsistent, with an error saying what is wrong; it never
// panics on hostile input (fuzzed).
package artifact

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/flywheel-ml/flywheel/ml/forest"
	"github.com/flywheel-ml/flywheel/ml/gbdt"
	"github.com/flywheel-ml/flywheel/ml/linear"
	"github.com/flywheel-ml/flywheel/ml/profile"
)

// Format is the version this package writes and reads.
const Format = 1

// MaxBytes bounds an artifact; a larger file is refused before it is parsed.
const MaxBytes = 256 << 20

var magic = []byte("flywheel-model 1\n")

// Algorithms.
const (
	GBDT     = "gbdt"
	Logistic = "logistic"
	Ridge    = "ridge"
)

// Feature is one input of the signature, in the order models read them.
type Feature struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // numeric or categorical
	// Source says where serving gets the value: a free string such as "request:amount" or
	// "card_activity:txn_count_1h" (the trainer writes it, serving reads it).
	Source string `json:"source"`
	// Default, when set, is the value serving substitutes for a missing input instead of
	// passing NaN to the model (which then applies its own missing-value rule).
	Default *float64 `json:"default,omitempty"`
	// Vocabulary: a categorical value's code is its index; other values are missing.
	Vocabulary []string `json:"vocabulary,omitempty"`
}

// Artifact is a trained model with everything around it.
type Artifact struct {
	Format    int                `json:"format"`
	Model     string             `json:"model"`
	Task      string             `json:"task"`              // binary, regression, or multiclass (forests)
	Classes   int                `json:"classes,omitempty"` // multiclass: how many (≥ 2); omitted otherwise, so older artifacts keep their bytes
	Algorithm string             `json:"algorithm"`
	Signature []Feature          `json:"signature"`
	Threshold float64            `json:"threshold,omitempty"` // binary: score at or above → 1
	Params    json.RawMessage    `json:"params,omitempty"`
	Metrics   map[string]float64 `json:"metrics,omitempty"` // holdout metrics (NaN ones are left out)
	Profile   *profile.Profile   `json:"profile,omitempty"`
	GBDT      *gbdt.Model        `json:"gbdt,omitempty"`
	Linear    *linear.Model      `json:"linear,omitempty"`
	// Forest is an imported LightGBM or XGBoost model; last so older artifacts encode to
	// the same bytes.
	Forest *forest.Model `json:"forest,omitempty"`
}

// Predictor scores one row of raw feature values in signature order (NaN missing,
// categorical codes): a probability for binary models, a value for regression, class 0's
// probability for multiclass ones (whose predictor, a *forest.Model, also has
// PredictInto for all classes).
type Predictor interface {
	Predict(row []float64) float64
}

// Predictor returns the model of the artifact.
func (a *Artifact) Predictor() Predictor {
	switch a.Algorithm {
	case GBDT:
		return a.GBDT
	case Logistic, Ridge:
		return a.Linear
	case LightGBM, XGBoost:
		return a.Forest
	}
	return nil
}

// Encode writes the artifact. Metrics that are not finite are dropped (JSON cannot carry them).
func Encode(a *Artifact) ([]byte, error) {
	c := *a
	c.Format = Format
	if len(a.Metrics) > 0 {
		c.Metrics = make(map[string]float64, len(a.Metrics))
		for k, v := range a.Metrics {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				c.Metrics[k] = v
			}
		}
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("encode artifact: %w", err)
	}
	body, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode artifact: %w", err)
	}
	return append(append([]byte(nil), magic...), body...), nil
}

// ContentHash is the hex sha256 of an encoded artifact.
func ContentHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Decode reads and validates an artifact.
func Decode(b []byte) (*Artifact, error) {
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("artifact is %d bytes, more than the %d allowed", len(b), MaxBytes)
	}
	if !bytes.HasPrefix(b, magic) {
		if bytes.HasPrefix(b, []byte("flywheel-model ")) {
			return nil, fmt.Errorf("artifact format %q is not supported (this build reads format %d)", firstLine(b), Format)
		}
		return nil, errors.New("not a Flywheel model artifact (no \"flywheel-model 1\" header)")
	}
	var a Artifact
	dec := json.NewDecoder(bytes.NewReader(b[len(magic):]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("artifact body: %w (truncated or damaged?)", err)
	}
	if dec.More() {
		return nil, errors.New("artifact body: data after the model")
	}
	if a.Format != Format {
		return nil, fmt.Errorf("artifact says format %d, its header %d", a.Format, Format)
	}
	if err := a.validate(); err != nil {
		return nil, err
	}
	if a.Forest != nil {
		if err := a.Forest.Validate(len(a.Signature)); err != nil { // prepares it for scoring
			return nil, fmt.Errorf("artifact: %w", err)
		}
	}
	return &a, nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 && i < 64 {
		return string(b[:i])
	}
	return string(b[:min(len(b), 64)])
}

// validate checks the artifact is consistent: a model to score with, a signature it agrees
// with, a profile of the same features.
func (a *Artifact) validate() error {
	if a.Model == "" {
		return errors.New("artifact: model name missing")
	}
	if a.Task != "binary" && a.Task != "regression" && !(a.Task == Multiclass && isForest(a.Algorithm)) {
		return fmt.Errorf("artifact: task %q is not binary or regression (multiclass: imported forests only)", a.Task)
	}
	if (a.Task == Multiclass) != (a.Classes != 0) || (a.Task == Multiclass && a.Classes < 2) {
		return fmt.Errorf("artifact: %d classes for a %s task (multiclass: 2 or more; others: none)", a.Classes, a.Task)
	}
	if len(a.Signature) == 0 {
		return errors.New("artifact: empty signature")
	}
	names := make(map[string]bool, len(a.Signature))
	for i, f := range a.Signature {
		switch {
		case f.Name == "":
			return fmt.Errorf("artifact: signature feature %d has no name", i)
		case names[f.Name]:
			return fmt.Errorf("artifact: signature names %q twice", f.Name)
		case f.Kind != "numeric" && f.Kind != "categorical":
			return fmt.Errorf("artifact: signature feature %s has kind %q", f.Name, f.Kind)
		case f.Kind == "numeric" && len(f.Vocabulary) > 0:
			return fmt.Errorf("artifact: numeric feature %s has a vocabulary", f.Name)
		case f.Default != nil && (math.IsNaN(*f.Default) || math.IsInf(*f.Default, 0)):
			return fmt.Errorf("artifact: feature %s has default %v", f.Name, *f.Default)
		case f.Default != nil && f.Kind == "categorical" && (*f.Default != math.Trunc(*f.Default) || *f.Default < 0 ||
			(len(f.Vocabulary) > 0 && *f.Default >= float64(len(f.Vocabulary)))):
			return fmt.Errorf("artifact: categorical feature %s has default %v, not a code of its vocabulary", f.Name, *f.Default)
		}
		names[f.Name] = true
	}
	if a.Task == "binary" && !(a.Threshold > 0 && a.Threshold < 1) {
		return fmt.Errorf("artifact: binary threshold %v is not between 0 and 1", a.Threshold)
	}
	if a.Forest != nil && !isForest(a.Algorithm) {
		return fmt.Errorf("artifact: algorithm %s with a forest", a.Algorithm)
	}
	switch a.Algorithm {
	case GBDT:
		if a.GBDT == nil {
			return errors.New("artifact: algorithm gbdt without a gbdt model")
		}
		if err := a.GBDT.Validate(len(a.Signature)); err != nil {
			return fmt.Errorf("artifact: %w", err)
		}
		if want := map[string]string{"binary": gbdt.Binary, "regression": gbdt.Regression}[a.Task]; a.GBDT.Objective != want {
			return fmt.Errorf("artifact: a %s task with a %s model", a.Task, a.GBDT.Objective)
		}
		for i, f := range a.GBDT.Features {
			if f.Categorical != (a.Signature[i].Kind == "categorical") {
				return fmt.Errorf("artifact: feature %s is %s in the signature but not in the model", a.Signature[i].Name, a.Signature[i].Kind)
			}
		}
	case Logistic, Ridge:
		if a.Linear == nil || a.Linear.Kind != a.Algorithm {
			return fmt.Errorf("artifact: algorithm %s without a %s model", a.Algorithm, a.Algorithm)
		}
		if (a.Algorithm == Logistic) != (a.Task == "binary") {
			return fmt.Errorf("artifact: a %s task with a %s model", a.Task, a.Algorithm)
		}
		if err := a.Linear.Validate(len(a.Signature)); err != nil {
			return fmt.Errorf("artifact: %w", err)
		}
		for i, in := range a.Linear.Inputs {
			if in.Categorical != (a.Signature[i].Kind == "categorical") {
				return fmt.Errorf("artifact: feature %s is %s in the signature but not in the model", a.Signature[i].Name, a.Signature[i].Kind)
			}
		}
	case LightGBM, XGBoost:
		if a.GBDT != nil || a.Linear != nil {
			return fmt.Errorf("artifact: algorithm %s with a gbdt or linear model", a.Algorithm)
		}
		if err := a.validateForest(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("artifact: unknown algorithm %q", a.Algorithm)
	}
	if p := a.Profile; p != nil {
		if err := p.Validate(len(a.Signature)); err != nil {
			return fmt.Errorf("artifact: %w", err)
		}
		for i, f := range p.Features {
			if f.Name != a.Signature[i].Name || f.Kind != a.Signature[i].Kind {
				return fmt.Errorf("artifact: profile feature %d is %s %q, signature says %s %q", i, f.Kind, f.Name, a.Signature[i].Kind, a.Signature[i].Name)
			}
		}
	}
	return nil
}
