package model_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/serving/internal/testmodel"
	"github.com/flywheel-ml/flywheel/services/serving/model"
)

// registry serves one artifact as fraud v2, answers errors, or is unreachable.
type registry struct {
	artifact  []byte
	err       error
	downloads int
}

func (r *registry) GetVersion(context.Context, string, int) (client.Version, error) {
	if r.err != nil {
		return client.Version{}, r.err
	}
	return client.Version{Version: 2, Source: "mlflow-artifacts:/1/r/artifacts/model",
		Tags: map[string]string{model.DigestTag: artifact.ContentHash(r.artifact)}}, nil
}

func (r *registry) GetArtifact(context.Context, string, string) ([]byte, error) {
	r.downloads++
	return r.artifact, nil
}

// TestCacheNeverOverridesTheRegistry: a cached artifact serves only when it is the one the
// registry recorded, or when the registry cannot be reached; a registry that answers "no
// such version" is believed; a stale cache entry is replaced.
func TestCacheNeverOverridesTheRegistry(t *testing.T) {
	stale, current := testmodel.Encoded(-3), testmodel.Encoded(2)
	ctx := context.Background()
	newCache := func() *model.Cache {
		c, err := model.NewCache(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.PutArtifact("fraud", 2, stale); err != nil {
			t.Fatal(err)
		}
		return c
	}

	cache := newCache()
	reg := &registry{artifact: current}
	s, err := model.NewLoader(reg, testmodel.ShippedViews(), cache).Load(ctx, "fraud", 2)
	if err != nil || s.Digest != artifact.ContentHash(current) || reg.downloads != 1 {
		t.Fatalf("registry recording another artifact than the cache's: digest %v (want the registry's), %d downloads, %v", s, reg.downloads, err)
	}
	if _, digest, _ := cache.Artifact("fraud", 2); digest != artifact.ContentHash(current) {
		t.Fatal("the stale cache entry was not replaced")
	}
	reg.downloads = 0
	if s, err := model.NewLoader(reg, testmodel.ShippedViews(), cache).Load(ctx, "fraud", 2); err != nil || reg.downloads != 0 || s.Digest != artifact.ContentHash(current) {
		t.Fatalf("the cache holding the recorded artifact must serve it without a download: %d downloads, %v", reg.downloads, err)
	}

	down := &registry{err: errors.New("dial tcp 127.0.0.1:8083: connection refused")}
	if s, err := model.NewLoader(down, testmodel.ShippedViews(), newCache()).Load(ctx, "fraud", 2); err != nil || s.Digest != artifact.ContentHash(stale) {
		t.Fatalf("registry unreachable: the cache must serve: %v", err)
	}
	gone := &registry{err: &client.Error{Status: http.StatusNotFound, Code: "RESOURCE_DOES_NOT_EXIST", Message: "no version 2"}}
	if _, err := model.NewLoader(gone, testmodel.ShippedViews(), newCache()).Load(ctx, "fraud", 2); err == nil {
		t.Fatal("a registry answering that the version does not exist must not be overridden by the cache")
	}
}
