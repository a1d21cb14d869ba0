// Package reference loads what the monitor compares production with: a model version's
// artifact — its signature (how logged values encode into model inputs), its reference
// profile (quantile bins, categorical frequencies, prediction distribution, raw sample) and
// its holdout metrics — from the registry, never from training data. Versions are immutable,
// so a loaded reference is kept for the life of the process.
package reference

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/services/registry/client"
)

// ArtifactFile is the artifact's name under a version's source (the trainer's layout).
const ArtifactFile = "model.flywheel"

// Registry is what the loader reads.
type Registry interface {
	GetVersion(ctx context.Context, model string, version int) (client.Version, error)
	GetArtifact(ctx context.Context, artifactURI, rel string) ([]byte, error)
}

// Reference is one model version's baseline.
type Reference struct {
	Model    string
	Version  int
	Artifact *artifact.Artifact
	// Encoders, in signature order, turn logged values into model inputs (the profile's space).
	Encoders []*artifact.Encoder
	index    map[string]int
}

// Feature returns the signature index of a feature name.
func (r *Reference) Feature(name string) (int, bool) {
	i, ok := r.index[name]
	return i, ok
}

// Loader loads and keeps references.
type Loader struct {
	registry Registry
	mu       sync.Mutex
	loaded   map[string]*Reference
}

// NewLoader returns a loader.
func NewLoader(reg Registry) *Loader {
	return &Loader{registry: reg, loaded: map[string]*Reference{}}
}

// Get returns the reference of a version.
func (l *Loader) Get(ctx context.Context, model string, version int) (*Reference, error) {
	key := fmt.Sprintf("%s\x00%d", model, version)
	l.mu.Lock()
	r, ok := l.loaded[key]
	l.mu.Unlock()
	if ok {
		return r, nil
	}
	v, err := l.registry.GetVersion(ctx, model, version)
	if err != nil {
		return nil, fmt.Errorf("read %s version %d: %w", model, version, err)
	}
	b, err := l.registry.GetArtifact(ctx, strings.TrimSuffix(v.Source, "/"), ArtifactFile)
	if err != nil {
		return nil, fmt.Errorf("download %s version %d: %w", model, version, err)
	}
	a, err := artifact.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s version %d: %w", model, version, err)
	}
	if a.Profile == nil {
		return nil, fmt.Errorf("%s version %d has no reference profile to compare with", model, version)
	}
	r = New(model, version, a)
	l.mu.Lock()
	l.loaded[key] = r
	l.mu.Unlock()
	return r, nil
}

// New wraps an artifact.
func New(model string, version int, a *artifact.Artifact) *Reference {
	r := &Reference{Model: model, Version: version, Artifact: a, index: map[string]int{}}
	for i, f := range a.Signature {
		r.Encoders = append(r.Encoders, f.Encoder())
		r.index[f.Name] = i
	}
	return r
}
