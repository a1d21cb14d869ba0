package model

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/services/registry/client"
)

// ArtifactFile is the artifact's name under a version's source (the trainer's layout).
const ArtifactFile = "model.flywheel"

// DigestTag is the version tag holding the artifact's sha256.
const DigestTag = "flywheel.artifact_sha256"

var errNotFinite = errors.New("warm-up: the model answered a score that is not a finite number")

// Registry is what the loader reads from the registry.
type Registry interface {
	GetVersion(ctx context.Context, model string, version int) (client.Version, error)
	GetArtifact(ctx context.Context, artifactURI, rel string) ([]byte, error)
}

// Loader fetches, verifies, compiles and warms model versions, through a local cache.
type Loader struct {
	registry Registry
	views    RefResolver
	cache    *Cache // nil: no cache
	warmUps  int
}

// NewLoader returns a loader; cache may be nil.
func NewLoader(reg Registry, views RefResolver, cache *Cache) *Loader {
	return &Loader{registry: reg, views: views, cache: cache, warmUps: 3}
}

// Load returns version of model ready to serve, checked against the digest the registry
// recorded, compiled against the served feature views and warmed up. The local cache
// supplies the artifact when it holds the one the registry recorded, and serves on its own
// only when the registry cannot be reached: a registry that answers is the truth (a cached
// "fraud v2" may be another registry's v2, or one from before the registry was reset).
func (l *Loader) Load(ctx context.Context, name string, version int) (*Served, error) {
	v, err := l.registry.GetVersion(ctx, name, version)
	var answered *client.Error
	if err != nil && errors.As(err, &answered) {
		return nil, fmt.Errorf("read %s version %d from the registry: %w", name, version, err)
	}
	want := v.Tags[DigestTag]
	if l.cache != nil {
		if b, digest, cerr := l.cache.Artifact(name, version); cerr == nil && (err != nil || want == digest) {
			if s, berr := l.build(name, version, digest, b); berr == nil {
				return s, nil
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read %s version %d from the registry: %w", name, version, err)
	}
	if v.Source == "" {
		return nil, &LoadError{fmt.Errorf("%s version %d has no source artifact", name, version)}
	}
	b, err := l.registry.GetArtifact(ctx, strings.TrimSuffix(v.Source, "/"), ArtifactFile)
	if err != nil {
		return nil, fmt.Errorf("download %s version %d (%s/%s): %w", name, version, v.Source, ArtifactFile, err)
	}
	digest := artifact.ContentHash(b)
	if want != "" && want != digest {
		return nil, &LoadError{fmt.Errorf("%s version %d: the artifact's sha256 is %s but the registry recorded %s", name, version, digest, want)}
	}
	s, err := l.build(name, version, digest, b)
	if err != nil {
		return nil, &LoadError{err}
	}
	if l.cache != nil {
		if err := l.cache.PutArtifact(name, version, b); err != nil {
			return s, fmt.Errorf("%w: %w", ErrNotCached, err)
		}
	}
	return s, nil
}

// LoadError is a version that cannot be served as it is: a damaged artifact, a digest or
// signature mismatch. Loading it again will not help.
type LoadError struct{ Err error }

func (e *LoadError) Error() string { return e.Err.Error() }
func (e *LoadError) Unwrap() error { return e.Err }

// ErrNotCached wraps a failure to write the local cache: the model loaded and can serve.
var ErrNotCached = errors.New("loaded, but not written to the local model cache")

func (l *Loader) build(name string, version int, digest string, b []byte) (*Served, error) {
	a, err := artifact.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s version %d: %w", name, version, err)
	}
	if a.Model != "" && a.Model != name {
		return nil, fmt.Errorf("%s version %d holds an artifact of model %q", name, version, a.Model)
	}
	plan, err := NewPlan(a.Signature, l.views)
	if err != nil {
		return nil, fmt.Errorf("%s version %d: %w", name, version, err)
	}
	s := NewServed(name, version, digest, a, plan)
	if err := s.warm(l.warmUps); err != nil {
		return nil, fmt.Errorf("%s version %d: %w", name, version, err)
	}
	return s, nil
}
