package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/flywheel-ml/flywheel/schemas"
)

// Model is a registered model. Its versions and aliases are keyed by its immutable ID, so a
// rename touches one document and a recreated name never inherits stale keys.
type Model struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	Description          string            `json:"description,omitempty"`
	UserID               string            `json:"user_id,omitempty"`
	Tags                 map[string]string `json:"tags,omitempty"`
	LatestVersion        int               `json:"latest_version"` // the last number allocated
	CreationTimestamp    int64             `json:"creation_timestamp"`
	LastUpdatedTimestamp int64             `json:"last_updated_timestamp"`
}

func modelKey(id string) string { return "m." + id }

func notFoundModel(name string) error {
	return fmt.Errorf("registered model with name=%s not found: %w", name, ErrNotFound)
}

// CreateModel registers a model; ErrAlreadyExists when the name is taken.
func (s *Store) CreateModel(ctx context.Context, m Model) (Model, error) {
	if err := validName("registered model", m.Name); err != nil {
		return Model{}, err
	}
	for k, v := range m.Tags {
		if err := validTag(k, v); err != nil {
			return Model{}, err
		}
	}
	m.ID = newID()
	if err := s.claimName(ctx, s.models, m.Name, m.ID, "registered model", modelKey); err != nil {
		if errors.Is(err, ErrAlreadyExists) {
			return Model{}, fmt.Errorf("registered model (name=%s) already exists: %w", m.Name, ErrAlreadyExists)
		}
		return Model{}, err
	}
	now := s.nowMillis()
	m.CreationTimestamp, m.LastUpdatedTimestamp, m.LatestVersion = now, now, 0
	if _, err := createJSON(ctx, s.models, modelKey(m.ID), "registered model "+m.Name, m); err != nil {
		return Model{}, err
	}
	s.notify.Notify(ctx, schemas.RegistryEvent{Type: schemas.RegistryModelCreated, Model: m.Name, At: s.now().UTC()})
	return m, nil
}

// GetModel returns a model by name.
func (s *Store) GetModel(ctx context.Context, name string) (Model, error) {
	idx, _, err := getJSON[nameIndex](ctx, s.models, nameKey(name), "registered model name")
	if errors.Is(err, ErrNotFound) {
		return Model{}, notFoundModel(name)
	}
	if err != nil {
		return Model{}, err
	}
	m, _, err := getJSON[Model](ctx, s.models, modelKey(idx.ID), "registered model "+name)
	if errors.Is(err, ErrNotFound) {
		return Model{}, notFoundModel(name)
	}
	return m, err
}

// Models returns every registered model.
func (s *Store) Models(ctx context.Context) ([]Model, error) {
	return listJSON[Model](ctx, s.models, "m.*", "registered models")
}

// updateModel applies change to the model with revision-checked writes.
func (s *Store) updateModel(ctx context.Context, name string, change func(*Model) error) (Model, error) {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return Model{}, err
	}
	m, _, err = updateJSON(ctx, s.models, modelKey(m.ID), "registered model "+name, func(m *Model) error {
		if err := change(m); err != nil {
			return err
		}
		m.LastUpdatedTimestamp = s.nowMillis()
		return nil
	})
	return m, err
}

// UpdateModelDescription sets a model's description.
func (s *Store) UpdateModelDescription(ctx context.Context, name, description string) (Model, error) {
	return s.updateModel(ctx, name, func(m *Model) error { m.Description = description; return nil })
}

// SetModelTag sets one tag of a model.
func (s *Store) SetModelTag(ctx context.Context, name, key, value string) (Model, error) {
	if err := validTag(key, value); err != nil {
		return Model{}, err
	}
	return s.updateModel(ctx, name, func(m *Model) error {
		if m.Tags == nil {
			m.Tags = map[string]string{}
		}
		m.Tags[key] = value
		return nil
	})
}

// DeleteModelTag removes one tag of a model.
func (s *Store) DeleteModelTag(ctx context.Context, name, key string) (Model, error) {
	return s.updateModel(ctx, name, func(m *Model) error {
		if _, ok := m.Tags[key]; !ok {
			return fmt.Errorf("no tag with name: %s on registered model %s: %w", key, name, ErrNotFound)
		}
		delete(m.Tags, key)
		return nil
	})
}

// RenameModel gives a model a new, unused name; versions and aliases follow it.
func (s *Store) RenameModel(ctx context.Context, name, newName string) (Model, error) {
	if err := validName("registered model", newName); err != nil {
		return Model{}, err
	}
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return Model{}, err
	}
	if err := s.claimName(ctx, s.models, newName, m.ID, "registered model", modelKey); err != nil {
		if errors.Is(err, ErrAlreadyExists) {
			return Model{}, fmt.Errorf("registered model (name=%s) already exists: %w", newName, ErrAlreadyExists)
		}
		return Model{}, err
	}
	m, err = s.updateModel(ctx, name, func(m *Model) error { m.Name = newName; return nil })
	if err != nil {
		return Model{}, err
	}
	if err := deleteKey(ctx, s.models, nameKey(name), "registered model name"); err != nil {
		return Model{}, err
	}
	s.notify.Notify(ctx, schemas.RegistryEvent{Type: schemas.RegistryModelRenamed, Model: newName, Reason: "renamed from " + name, At: s.now().UTC()})
	return m, nil
}

// DeleteModel deletes a model with its versions and aliases. The name is released first, so
// a crash midway leaves only unreachable keys, never a half-deleted model under the name.
func (s *Store) DeleteModel(ctx context.Context, name string) error {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return err
	}
	if err := deleteKey(ctx, s.models, nameKey(name), "registered model name"); err != nil {
		return err
	}
	versions, err := listJSON[Version](ctx, s.versions, "v."+m.ID+".*", "model versions")
	if err != nil {
		return err
	}
	for _, v := range versions {
		if err := deleteKey(ctx, s.versions, versionKey(m.ID, v.Version), "model version"); err != nil {
			return err
		}
	}
	aliases, err := listJSON[AliasMove](ctx, s.aliases, "a."+m.ID+".*", "aliases")
	if err != nil {
		return err
	}
	for _, a := range aliases {
		if err := deleteKey(ctx, s.aliases, aliasKey(m.ID, a.Alias), "alias"); err != nil {
			return err
		}
	}
	if err := deleteKey(ctx, s.models, modelKey(m.ID), "registered model"); err != nil {
		return err
	}
	s.notify.Notify(ctx, schemas.RegistryEvent{Type: schemas.RegistryModelDeleted, Model: name, At: s.now().UTC()})
	return nil
}

// decodeModelID is used by callers that hold a version or alias and need its model's name.
func (s *Store) modelByID(ctx context.Context, id string) (Model, error) {
	m, _, err := getJSON[Model](ctx, s.models, modelKey(id), "registered model "+id)
	return m, err
}
