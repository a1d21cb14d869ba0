package learner

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	mldataset "github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/gbdt"
	"github.com/flywheel-ml/flywheel/ml/linear"
	"github.com/flywheel-ml/flywheel/ml/metrics"
	"github.com/flywheel-ml/flywheel/ml/profile"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
	"github.com/flywheel-ml/flywheel/services/trainer/pipeline"
)

// Learner trains with the ml module. It is safe for concurrent use.
type Learner struct {
	// Workers bounds the goroutines one training uses (0: GOMAXPROCS).
	Workers int
}

var _ pipeline.Learner = Learner{}

// Train fits spec's algorithm on the rows train of b.
func (l Learner) Train(ctx context.Context, spec *modelspec.Spec, b *dataset.Built, train []int, seed uint64,
	progress func(step int, metrics map[string]float64)) (pipeline.Model, error) {
	frame, err := Remap(b, train, b.Columns)
	if err != nil {
		return nil, err
	}
	if spec.Algorithm.Name != modelspec.GBDT {
		return l.trainLinear(ctx, spec, b, train, frame, seed, progress)
	}
	p, err := gbdtParams(spec, seed)
	if err != nil {
		return nil, err
	}
	p.Workers = l.Workers
	m, err := gbdt.Train(ctx, frame, p, func(r gbdt.Round) {
		m := map[string]float64{"train_loss": r.TrainLoss}
		if r.ValidationLoss == r.ValidationLoss { // not NaN
			m["validation_loss"] = r.ValidationLoss
		}
		progress(r.Round, m)
	})
	if err != nil {
		return nil, err
	}
	pred := make([]float64, frame.Rows())
	m.PredictFrame(frame, pred)
	prof, err := profile.Build(frame, pred, profile.Options{Seed: seed})
	if err != nil {
		return nil, fmt.Errorf("reference profile: %w", err)
	}
	if err := heldOutPredictions(prof, b, train, m.PredictFrame); err != nil {
		return nil, err
	}
	params, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	a := &artifact.Artifact{Model: spec.Name, Task: spec.Task, Algorithm: artifact.GBDT, Signature: signature(b.Columns),
		Params: params, Profile: prof, GBDT: m}
	if spec.Task == modelspec.Binary {
		a.Threshold = spec.Threshold
	}
	return &Model{a: a}, nil
}

// Load decodes an artifact.
func (Learner) Load(data []byte) (pipeline.Model, error) {
	a, err := artifact.Decode(data)
	if err != nil {
		return nil, err
	}
	return &Model{a: a}, nil
}

func signature(cols []dataset.Column) []artifact.Feature {
	out := make([]artifact.Feature, len(cols))
	for i, c := range cols {
		out[i] = artifact.Feature{Name: c.Name, Kind: c.Kind, Source: c.Source, Vocabulary: c.Vocabulary}
	}
	return out
}

// Model is a trained or loaded artifact.
type Model struct{ a *artifact.Artifact }

func (m *Model) columns() []dataset.Column {
	cols := make([]dataset.Column, len(m.a.Signature))
	for i, f := range m.a.Signature {
		cols[i] = dataset.Column{Name: f.Name, Kind: f.Kind, Source: f.Source, Vocabulary: f.Vocabulary}
	}
	return cols
}

// Score predicts rows of b through the model's own signature.
func (m *Model) Score(b *dataset.Built, rows []int) ([]float64, error) {
	frame, err := Remap(b, rows, m.columns())
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(rows))
	switch {
	case m.a.GBDT != nil:
		m.a.GBDT.PredictFrame(frame, out)
	case m.a.Linear != nil:
		m.a.Linear.PredictFrame(frame, out)
	default:
		return nil, fmt.Errorf("artifact of %s has no model", m.a.Model)
	}
	return out, nil
}

// Encode returns the artifact with the holdout metrics.
func (m *Model) Encode(metrics map[string]float64) ([]byte, error) {
	c := *m.a
	c.Metrics = metrics
	return artifact.Encode(&c)
}

// Signature is the registry's view of the inputs.
func (m *Model) Signature() []client.Field {
	out := make([]client.Field, len(m.a.Signature))
	for i, f := range m.a.Signature {
		t := "double"
		if f.Kind == modelspec.Categorical {
			t = "string"
		}
		out[i] = client.Field{Name: f.Name, Type: t}
	}
	return out
}

// Profile is the reference profile as JSON, for the registry.
func (m *Model) Profile() json.RawMessage {
	b, _ := json.Marshal(m.a.Profile)
	return b
}

// Params are the training parameters, flattened for display.
func (m *Model) Params() map[string]string {
	var raw map[string]any
	_ = json.Unmarshal(m.a.Params, &raw)
	out := map[string]string{}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out[k] = fmt.Sprint(raw[k])
	}
	return out
}

// Evaluate computes holdout metrics by task, for the pipeline.
func Evaluate(task string, labels, scores []float64, threshold float64) map[string]float64 {
	if task == modelspec.Regression {
		return metrics.EvaluateRegression(labels, scores).Map()
	}
	return metrics.EvaluateBinary(labels, scores, threshold).Map()
}

// trainLinear fits logistic or ridge regression; it reports one step with the training loss.
func (l Learner) trainLinear(ctx context.Context, spec *modelspec.Spec, b *dataset.Built, rows []int, frame *mldataset.Frame, seed uint64,
	progress func(step int, metrics map[string]float64)) (pipeline.Model, error) {
	p := linear.Params{Standardize: true, Workers: l.Workers}
	var standardize float64 = 1
	if err := assign(spec.Algorithm.Params, map[string]*int{"max_iter": &p.MaxIter},
		map[string]*float64{"l2": &p.L2, "tol": &p.Tol, "standardize": &standardize}); err != nil {
		return nil, err
	}
	p.Standardize = standardize != 0
	var m *linear.Model
	var err error
	if spec.Algorithm.Name == modelspec.Ridge {
		m, err = linear.TrainRidge(ctx, frame, p)
	} else {
		m, err = linear.TrainLogistic(ctx, frame, p)
	}
	if err != nil {
		return nil, err
	}
	pred := make([]float64, frame.Rows())
	m.PredictFrame(frame, pred)
	train := Evaluate(spec.Task, frame.Label, pred, spec.Threshold)
	progress(1, map[string]float64{"train_log_loss": train["log_loss"], "train_rmse": train["rmse"]})
	prof, err := profile.Build(frame, pred, profile.Options{Seed: seed})
	if err != nil {
		return nil, fmt.Errorf("reference profile: %w", err)
	}
	if err := heldOutPredictions(prof, b, rows, m.PredictFrame); err != nil {
		return nil, err
	}
	params, _ := json.Marshal(p)
	a := &artifact.Artifact{Model: spec.Name, Task: spec.Task, Algorithm: spec.Algorithm.Name, Signature: signature(b.Columns),
		Params: params, Profile: prof, Linear: m}
	if spec.Task == modelspec.Binary {
		a.Threshold = spec.Threshold
	}
	return &Model{a: a}, nil
}

// minHeldOut is the fewest held-out rows whose predictions make the prediction reference.
const minHeldOut = 100

// heldOutPredictions makes the profile's prediction reference the model's scores on the
// rows of b it did not train on (the holdout), as production sees it; with fewer than
// minHeldOut such rows the in-sample reference stays.
func heldOutPredictions(prof *profile.Profile, b *dataset.Built, train []int, predict func(*mldataset.Frame, []float64)) error {
	inTrain := make([]bool, b.Frame.Rows())
	for _, r := range train {
		inTrain[r] = true
	}
	var held []int
	for r, in := range inTrain {
		if !in {
			held = append(held, r)
		}
	}
	if len(held) < minHeldOut {
		return nil
	}
	frame, err := Remap(b, held, b.Columns)
	if err != nil {
		return fmt.Errorf("held-out rows for the prediction reference: %w", err)
	}
	pred := make([]float64, frame.Rows())
	predict(frame, pred)
	prof.Predictions = profile.PredictionReference(pred, profile.Options{})
	return nil
}
