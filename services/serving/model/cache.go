package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/flywheel-ml/flywheel/ml/artifact"
)

// Cache keeps the artifacts serving loaded and the aliases they were served under, on local
// disk, so a restarted process serves at once even when the registry is unreachable:
//
//	<dir>/<model>/v<version>.flywheel  the artifact, as downloaded
//	<dir>/<model>/aliases.json         {"champion": 3, "challenger": 4}
//
// Files are written to a temporary name and renamed, so a crash never leaves half a file.
type Cache struct{ dir string }

// NewCache returns a cache in dir, creating it.
func NewCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("model cache %s: %w", dir, err)
	}
	return &Cache{dir: dir}, nil
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func (c *Cache) modelDir(name string) (string, error) {
	if !safeName.MatchString(name) || name == "." || name == ".." {
		return "", fmt.Errorf("model name %q cannot name a cache directory", name)
	}
	return filepath.Join(c.dir, name), nil
}

// Artifact returns the cached artifact of a version with its sha256.
func (c *Cache) Artifact(name string, version int) ([]byte, string, error) {
	d, err := c.modelDir(name)
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(filepath.Join(d, "v"+strconv.Itoa(version)+".flywheel"))
	if err != nil {
		return nil, "", err
	}
	return b, artifact.ContentHash(b), nil
}

// PutArtifact stores a version's artifact.
func (c *Cache) PutArtifact(name string, version int, b []byte) error {
	d, err := c.modelDir(name)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(d, "v"+strconv.Itoa(version)+".flywheel"), b)
}

// Aliases returns the aliases last served for each cached model.
func (c *Cache) Aliases() (map[string]map[string]int, error) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]int{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(c.dir, e.Name(), "aliases.json"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var aliases map[string]int
		if err := json.Unmarshal(b, &aliases); err != nil {
			return nil, fmt.Errorf("model cache %s/aliases.json: %w", e.Name(), err)
		}
		out[e.Name()] = aliases
	}
	return out, nil
}

// PutAliases records the aliases a model is served under now.
func (c *Cache) PutAliases(name string, aliases map[string]int) error {
	d, err := c.modelDir(name)
	if err != nil {
		return err
	}
	b, err := json.Marshal(aliases)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(d, "aliases.json"), b)
}

func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
