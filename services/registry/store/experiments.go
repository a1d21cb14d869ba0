package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/flywheel-ml/flywheel/schemas"
)

// Lifecycle stages of experiments and runs, as MLflow names them.
const (
	StageActive  = "active"
	StageDeleted = "deleted"
)

// DefaultExperimentID is MLflow's Default experiment, which always exists.
const DefaultExperimentID = "0"

// Experiment is an MLflow experiment.
type Experiment struct {
	ID               string            `json:"experiment_id"`
	Name             string            `json:"name"`
	ArtifactLocation string            `json:"artifact_location"`
	LifecycleStage   string            `json:"lifecycle_stage"`
	CreationTime     int64             `json:"creation_time"`
	LastUpdateTime   int64             `json:"last_update_time"`
	Tags             map[string]string `json:"tags,omitempty"`
}

type nameIndex struct {
	ID string `json:"id"`
}

func experimentKey(id string) string { return "e." + id }

func validName(kind, name string) error {
	if strings.TrimSpace(name) == "" {
		return invalidf("%s name must not be empty", kind)
	}
	if len(name) > 500 || !utf8.ValidString(name) {
		return invalidf("%s name must be valid UTF-8 of at most 500 bytes", kind)
	}
	return nil
}

func (s *Store) ensureDefaultExperiment(ctx context.Context) error {
	_, err := s.createExperiment(ctx, DefaultExperimentID, "Default", "", nil)
	if err != nil && !errors.Is(err, ErrAlreadyExists) {
		return fmt.Errorf("default experiment: %w", err)
	}
	return nil
}

// CreateExperiment creates an experiment; ErrAlreadyExists when the name is taken (also by a
// deleted experiment, as in MLflow).
func (s *Store) CreateExperiment(ctx context.Context, name, artifactLocation string, tags map[string]string) (Experiment, error) {
	if err := validName("experiment", name); err != nil {
		return Experiment{}, err
	}
	seq, err := nextSeq(ctx, s.experiments, "seq", 1)
	if err != nil {
		return Experiment{}, fmt.Errorf("allocate experiment id: %w", err)
	}
	return s.createExperiment(ctx, strconv.FormatInt(seq, 10), name, artifactLocation, tags)
}

func (s *Store) createExperiment(ctx context.Context, id, name, artifactLocation string, tags map[string]string) (Experiment, error) {
	if err := s.claimName(ctx, s.experiments, name, id, "experiment", experimentKey); err != nil {
		return Experiment{}, err
	}
	now := s.nowMillis()
	if artifactLocation == "" {
		artifactLocation = "mlflow-artifacts:/" + id
	}
	e := Experiment{ID: id, Name: name, ArtifactLocation: artifactLocation, LifecycleStage: StageActive,
		CreationTime: now, LastUpdateTime: now, Tags: tags}
	if _, err := createJSON(ctx, s.experiments, experimentKey(id), "experiment "+id, e); err != nil {
		return Experiment{}, err
	}
	s.notify.Notify(ctx, schemas.RegistryEvent{Type: schemas.RegistryExperimentCreated, ExperimentID: id, At: s.now().UTC()})
	return e, nil
}

// claimName reserves name for id in b's name index. A name whose owner document does not
// exist (a crash between claim and create) is taken over.
func (s *Store) claimName(ctx context.Context, b *bucket, name, id, kind string, docKey func(string) string) error {
	_, err := createJSON(ctx, b, nameKey(name), kind+" name", nameIndex{ID: id})
	if !errors.Is(err, ErrAlreadyExists) {
		return err
	}
	idx, rev, err := getJSON[nameIndex](ctx, b, nameKey(name), kind+" name")
	if err != nil {
		return err
	}
	if _, err := b.kv.Get(ctx, docKey(idx.ID)); !missing(err) {
		return fmt.Errorf("%s '%s' already exists: %w", kind, name, ErrAlreadyExists)
	}
	data, _ := json.Marshal(nameIndex{ID: id})
	newRev, err := b.kv.Update(ctx, nameKey(name), data, rev)
	if conflict(err) {
		return fmt.Errorf("%s '%s' already exists: %w", kind, name, ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("claim %s name %s: %w", kind, name, err)
	}
	b.written(newRev)
	return nil
}

// GetExperiment returns an experiment by id.
func (s *Store) GetExperiment(ctx context.Context, id string) (Experiment, error) {
	e, _, err := getJSON[Experiment](ctx, s.experiments, experimentKey(id), "experiment "+id)
	if errors.Is(err, ErrNotFound) {
		return e, fmt.Errorf("no experiment with id=%s: %w", id, ErrNotFound)
	}
	return e, err
}

// GetExperimentByName returns an experiment by name.
func (s *Store) GetExperimentByName(ctx context.Context, name string) (Experiment, error) {
	idx, _, err := getJSON[nameIndex](ctx, s.experiments, nameKey(name), "experiment name")
	if errors.Is(err, ErrNotFound) {
		return Experiment{}, fmt.Errorf("experiment '%s' does not exist: %w", name, ErrNotFound)
	}
	if err != nil {
		return Experiment{}, err
	}
	e, err := s.GetExperiment(ctx, idx.ID)
	if errors.Is(err, ErrNotFound) {
		return e, fmt.Errorf("experiment '%s' does not exist: %w", name, ErrNotFound)
	}
	return e, err
}

// Experiments returns every experiment.
func (s *Store) Experiments(ctx context.Context) ([]Experiment, error) {
	return listJSON[Experiment](ctx, s.experiments, "e.*", "experiments")
}

func (s *Store) updateExperiment(ctx context.Context, id string, change func(*Experiment) error) (Experiment, error) {
	if _, err := s.GetExperiment(ctx, id); err != nil {
		return Experiment{}, err
	}
	e, _, err := updateJSON(ctx, s.experiments, experimentKey(id), "experiment "+id, func(e *Experiment) error {
		if err := change(e); err != nil {
			return err
		}
		e.LastUpdateTime = s.nowMillis()
		return nil
	})
	if err == nil {
		s.notify.Notify(ctx, schemas.RegistryEvent{Type: schemas.RegistryExperimentUpdated, ExperimentID: id, At: s.now().UTC()})
	}
	return e, err
}

// RenameExperiment gives an experiment a new, unused name.
func (s *Store) RenameExperiment(ctx context.Context, id, newName string) (Experiment, error) {
	if err := validName("experiment", newName); err != nil {
		return Experiment{}, err
	}
	old, err := s.GetExperiment(ctx, id)
	if err != nil {
		return Experiment{}, err
	}
	if old.Name == newName {
		return old, nil
	}
	if err := s.claimName(ctx, s.experiments, newName, id, "experiment", experimentKey); err != nil {
		return Experiment{}, err
	}
	e, err := s.updateExperiment(ctx, id, func(e *Experiment) error { e.Name = newName; return nil })
	if err != nil {
		return e, err
	}
	return e, deleteKey(ctx, s.experiments, nameKey(old.Name), "experiment name")
}

// SetExperimentLifecycle marks an experiment deleted or active again (MLflow's soft delete).
func (s *Store) SetExperimentLifecycle(ctx context.Context, id, stage string) (Experiment, error) {
	if id == DefaultExperimentID && stage == StageDeleted {
		return Experiment{}, invalidf("the Default experiment cannot be deleted")
	}
	return s.updateExperiment(ctx, id, func(e *Experiment) error { e.LifecycleStage = stage; return nil })
}

// SetExperimentTag sets one tag.
func (s *Store) SetExperimentTag(ctx context.Context, id, key, value string) (Experiment, error) {
	if err := validTag(key, value); err != nil {
		return Experiment{}, err
	}
	return s.updateExperiment(ctx, id, func(e *Experiment) error {
		if e.Tags == nil {
			e.Tags = map[string]string{}
		}
		e.Tags[key] = value
		return nil
	})
}

// MLflow's limits on keys and values.
const (
	maxKeyLen        = 250
	maxParamValueLen = 6000
	maxTagValueLen   = 8000
)

func validKey(kind, key string) error {
	if key == "" || len(key) > maxKeyLen {
		return invalidf("%s key must be 1 to %d characters, got %d", kind, maxKeyLen, len(key))
	}
	if strings.Contains(key, "..") || strings.HasPrefix(key, "/") {
		return invalidf("invalid %s key '%s': it must not contain '..' or start with '/'", kind, key)
	}
	return nil
}

func validTag(key, value string) error {
	if err := validKey("tag", key); err != nil {
		return err
	}
	if len(value) > maxTagValueLen {
		return invalidf("tag '%s' value is %d characters, the limit is %d", key, len(value), maxTagValueLen)
	}
	return nil
}
