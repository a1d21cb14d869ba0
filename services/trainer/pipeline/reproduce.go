package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
)

// Reproduction compares a run's stored model artifact with one retrained from the run's own
// snapshot and spec.
type Reproduction struct {
	RunID        string `json:"run_id"`
	OriginalHash string `json:"original_sha256"`
	RetrainHash  string `json:"retrained_sha256"`
	Identical    bool   `json:"identical"`
	Rows         int    `json:"rows"`
}

// Reproduce retrains the model of a registry run from the dataset snapshot and the spec the
// run stored, and reports whether the artifact is bit for bit the same.
func (p *Pipeline) Reproduce(ctx context.Context, registryRunID string) (Reproduction, error) {
	out := Reproduction{RunID: registryRunID}
	info, err := p.registry.GetRun(ctx, registryRunID)
	if err != nil {
		return out, fmt.Errorf("read run %s: %w", registryRunID, err)
	}
	read := func(rel string) ([]byte, error) {
		b, err := p.registry.GetArtifact(ctx, info.ArtifactURI, rel)
		if err != nil {
			return nil, fmt.Errorf("read %s of run %s (was it a trainer run?): %w", rel, registryRunID, err)
		}
		return b, nil
	}
	specJSON, err := read(SpecPath)
	if err != nil {
		return out, err
	}
	var spec modelspec.Spec
	if err := json.Unmarshal(specJSON, &spec); err != nil {
		return out, fmt.Errorf("the run's spec: %w", err)
	}
	snapshot, err := read(SnapshotPath)
	if err != nil {
		return out, err
	}
	original, err := read(ModelPath)
	if err != nil {
		return out, err
	}
	built, err := dataset.ReadSnapshot(snapshot)
	if err != nil {
		return out, err
	}
	out.Rows = built.Frame.Rows()
	train, test, err := dataset.Split(&spec, built)
	if err != nil {
		return out, err
	}
	model, err := p.learner.Train(ctx, &spec, built, train, spec.Training.Seed, func(int, map[string]float64) {})
	if err != nil {
		return out, fmt.Errorf("retrain: %w", err)
	}
	labels := make([]float64, len(test))
	for i, r := range test {
		labels[i] = built.Frame.Label[r]
	}
	scores, err := model.Score(built, test)
	if err != nil {
		return out, err
	}
	artifact, err := model.Encode(p.evaluate(spec.Task, labels, scores, spec.Threshold))
	if err != nil {
		return out, err
	}
	a, b := sha256.Sum256(original), sha256.Sum256(artifact)
	out.OriginalHash, out.RetrainHash = hex.EncodeToString(a[:]), hex.EncodeToString(b[:])
	out.Identical = out.OriginalHash == out.RetrainHash
	return out, nil
}
