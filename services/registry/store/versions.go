package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/flywheel-ml/flywheel/schemas"
)

// Lineage is where a model version came from: Flywheel's addition to MLflow.
type Lineage struct {
	RunID          string            `json:"run_id,omitempty"`
	DatasetVersion string            `json:"dataset_version,omitempty"`
	FeatureViews   map[string]string `json:"feature_views,omitempty"` // view → version hash
	CodeVersion    string            `json:"code_version,omitempty"`
	Trigger        string            `json:"trigger,omitempty"` // e.g. drift:<event id>, manual, schedule
}

// Field is one input or output of a model's signature.
type Field struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Version is one version of a registered model.
type Version struct {
	ModelID              string            `json:"model_id"`
	Name                 string            `json:"name"` // the model's name when read
	Version              int               `json:"version"`
	Source               string            `json:"source,omitempty"`
	RunID                string            `json:"run_id,omitempty"`
	RunLink              string            `json:"run_link,omitempty"`
	Description          string            `json:"description,omitempty"`
	UserID               string            `json:"user_id,omitempty"`
	Tags                 map[string]string `json:"tags,omitempty"`
	CreationTimestamp    int64             `json:"creation_timestamp"`
	LastUpdatedTimestamp int64             `json:"last_updated_timestamp"`
	Lineage              *Lineage          `json:"lineage,omitempty"`
	Signature            []Field           `json:"signature,omitempty"`
	// Profile is the training reference distribution per feature, which the monitor compares
	// live traffic with; its shape is the monitor's.
	Profile json.RawMessage `json:"profile,omitempty"`
}

func versionKey(modelID string, version int) string {
	return "v." + modelID + "." + strconv.Itoa(version)
}

func notFoundVersion(name string, version int) error {
	return fmt.Errorf("model version (name=%s, version=%d) not found: %w", name, version, ErrNotFound)
}

// CreateVersion allocates the model's next version number — consecutive, never reused, even
// with concurrent writers — and stores the version. A crash between the two leaves a gap,
// never a duplicate.
func (s *Store) CreateVersion(ctx context.Context, v Version) (Version, error) {
	for k, val := range v.Tags {
		if err := validTag(k, val); err != nil {
			return Version{}, err
		}
	}
	m, err := s.updateModel(ctx, v.Name, func(m *Model) error { m.LatestVersion++; return nil })
	if err != nil {
		return Version{}, err
	}
	now := s.nowMillis()
	v.ModelID, v.Name, v.Version = m.ID, m.Name, m.LatestVersion
	v.CreationTimestamp, v.LastUpdatedTimestamp = now, now
	if _, err := createJSON(ctx, s.versions, versionKey(m.ID, v.Version), fmt.Sprintf("version %d of %s", v.Version, m.Name), v); err != nil {
		return Version{}, err
	}
	s.notify.Notify(ctx, schemas.RegistryEvent{Type: schemas.RegistryVersionCreated, Model: m.Name, Version: v.Version, RunID: v.RunID, At: s.now().UTC()})
	return v, nil
}

// GetVersion returns one version.
func (s *Store) GetVersion(ctx context.Context, name string, version int) (Version, error) {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return Version{}, err
	}
	v, _, err := getJSON[Version](ctx, s.versions, versionKey(m.ID, version), "model version")
	if errors.Is(err, ErrNotFound) {
		return Version{}, notFoundVersion(name, version)
	}
	v.Name = m.Name
	return v, err
}

// Versions returns the versions of a model, newest first.
func (s *Store) Versions(ctx context.Context, name string) ([]Version, error) {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return nil, err
	}
	vs, err := listJSON[Version](ctx, s.versions, "v."+m.ID+".*", "model versions")
	if err != nil {
		return nil, err
	}
	for i := range vs {
		vs[i].Name = m.Name
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Version > vs[j].Version })
	return vs, nil
}

// AllVersions returns every version of every model, with current model names.
func (s *Store) AllVersions(ctx context.Context) ([]Version, error) {
	models, err := s.Models(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(models))
	for _, m := range models {
		names[m.ID] = m.Name
	}
	vs, err := listJSON[Version](ctx, s.versions, "v.>", "model versions")
	if err != nil {
		return nil, err
	}
	out := vs[:0]
	for _, v := range vs {
		if name, ok := names[v.ModelID]; ok { // versions of a model deleted midway are gone
			v.Name = name
			out = append(out, v)
		}
	}
	return out, nil
}

func (s *Store) updateVersion(ctx context.Context, name string, version int, change func(*Version) error) (Version, error) {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return Version{}, err
	}
	v, _, err := updateJSON(ctx, s.versions, versionKey(m.ID, version), "model version", func(v *Version) error {
		if err := change(v); err != nil {
			return err
		}
		v.LastUpdatedTimestamp = s.nowMillis()
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Version{}, notFoundVersion(name, version)
	}
	v.Name = m.Name
	if err == nil {
		s.notify.Notify(ctx, schemas.RegistryEvent{Type: schemas.RegistryVersionUpdated, Model: m.Name, Version: version, At: s.now().UTC()})
	}
	return v, err
}

// UpdateVersionDescription sets a version's description.
func (s *Store) UpdateVersionDescription(ctx context.Context, name string, version int, description string) (Version, error) {
	return s.updateVersion(ctx, name, version, func(v *Version) error { v.Description = description; return nil })
}

// SetVersionTag sets one tag of a version.
func (s *Store) SetVersionTag(ctx context.Context, name string, version int, key, value string) (Version, error) {
	if err := validTag(key, value); err != nil {
		return Version{}, err
	}
	return s.updateVersion(ctx, name, version, func(v *Version) error {
		if v.Tags == nil {
			v.Tags = map[string]string{}
		}
		v.Tags[key] = value
		return nil
	})
}

// DeleteVersionTag removes one tag of a version.
func (s *Store) DeleteVersionTag(ctx context.Context, name string, version int, key string) (Version, error) {
	return s.updateVersion(ctx, name, version, func(v *Version) error {
		if _, ok := v.Tags[key]; !ok {
			return fmt.Errorf("no tag with name: %s on model version %s/%d: %w", key, name, version, ErrNotFound)
		}
		delete(v.Tags, key)
		return nil
	})
}

// DeleteVersion deletes a version and the aliases pointing at it; its number is never reused.
func (s *Store) DeleteVersion(ctx context.Context, name string, version int) error {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return err
	}
	if _, _, err := getJSON[Version](ctx, s.versions, versionKey(m.ID, version), "model version"); err != nil {
		if errors.Is(err, ErrNotFound) {
			return notFoundVersion(name, version)
		}
		return err
	}
	aliases, err := s.Aliases(ctx, name)
	if err != nil {
		return err
	}
	for _, a := range aliases {
		if a.Version == version {
			if err := s.DeleteAlias(ctx, name, a.Alias, "", "version deleted"); err != nil {
				return err
			}
		}
	}
	if err := deleteKey(ctx, s.versions, versionKey(m.ID, version), "model version"); err != nil {
		return err
	}
	s.notify.Notify(ctx, schemas.RegistryEvent{Type: schemas.RegistryVersionDeleted, Model: name, Version: version, At: s.now().UTC()})
	return nil
}
