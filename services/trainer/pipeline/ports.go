// Package pipeline executes one training run: build the leakage-free dataset and its
// snapshot, train, evaluate on the time-based holdout, re-score the champion on the same
// holdout, register the version with its lineage, signature and reference profile, apply
// the gates, and promote — or leave the candidate as challenger with the failing gates named.
package pipeline

import (
	"context"
	"encoding/json"

	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
)

// Registry is what a run needs of the registry (client.Client).
type Registry interface {
	EnsureExperiment(ctx context.Context, name string) (string, error)
	CreateRun(ctx context.Context, experimentID, name string, tags map[string]string) (client.RunInfo, error)
	GetRun(ctx context.Context, runID string) (client.RunInfo, error)
	LogBatch(ctx context.Context, runID string, metrics []client.Metric, params, tags map[string]string) error
	EndRun(ctx context.Context, runID, status string) error
	PutArtifact(ctx context.Context, artifactURI, rel string, data []byte) error
	GetArtifact(ctx context.Context, artifactURI, rel string) ([]byte, error)
	RecordDataset(ctx context.Context, d client.DatasetVersion) (client.DatasetVersion, error)
	EnsureModel(ctx context.Context, name string) error
	CreateVersion(ctx context.Context, model string, v client.NewVersion) (client.Version, error)
	GetVersion(ctx context.Context, model string, version int) (client.Version, error)
	Aliases(ctx context.Context, model string) (map[string]int, error)
	MoveAlias(ctx context.Context, model, alias string, version int, reason string) error
}

// EventLog reads a training window's prediction events and labels (dataset.LoadLogged).
type EventLog interface {
	Load(ctx context.Context, spec *modelspec.Spec, w dataset.Window) (events, labels []dataset.LoggedEvent, err error)
}

// Learner trains models and loads them back from artifacts (the ml module behind an adapter).
type Learner interface {
	// Train fits spec's algorithm on the rows train of b, deterministically for seed,
	// reporting each boosting round or iteration's metrics to progress.
	Train(ctx context.Context, spec *modelspec.Spec, b *dataset.Built, train []int, seed uint64,
		progress func(step int, metrics map[string]float64)) (Model, error)
	// Load decodes an artifact Encode wrote (the champion's).
	Load(artifact []byte) (Model, error)
}

// Model is a trained model as a run handles it.
type Model interface {
	// Score predicts rows of b, mapping b's columns and categorical vocabularies onto the
	// model's own signature (a champion may have seen other categories).
	Score(b *dataset.Built, rows []int) ([]float64, error)
	// Encode returns the artifact: the model with its signature, holdout metrics and
	// reference profile. The same model and metrics always give the same bytes.
	Encode(metrics map[string]float64) ([]byte, error)
	Signature() []client.Field
	Profile() json.RawMessage
	Params() map[string]string
}

// Evaluator computes the holdout metrics of a task (ml/metrics behind an adapter).
type Evaluator func(task string, labels, scores []float64, threshold float64) map[string]float64
