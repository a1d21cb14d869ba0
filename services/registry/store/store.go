// Package store keeps registered models, model versions and aliases in NATS JetStream KV,
// every write revision-checked, so concurrent writers never lose an update and version
// numbers are allocated without races (MLflow's MAX(version)+1 is the anti-example). Alias
// moves are also appended to an audit stream, and alias keys are watchable (serving hot-swaps
// on them).
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Errors callers branch on.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrInvalid       = errors.New("invalid")
)

// Buckets and streams, prefixed per deployment (tests use their own prefix).
const (
	modelsBucket   = "MODELS"
	versionsBucket = "MODEL_VERSIONS"
	aliasesBucket  = "MODEL_ALIASES"
	auditStream    = "MODEL_ALIAS_AUDIT"
)

// Model is a registered model.
type Model struct {
	Name          string            `json:"name"`
	Description   string            `json:"description,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	LatestVersion int               `json:"latest_version"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

// Version is one version of a model.
type Version struct {
	Model       string            `json:"model"`
	Version     int               `json:"version"`
	Source      string            `json:"source,omitempty"`
	RunID       string            `json:"run_id,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
}

// AliasMove is one alias change: the current state of an alias and an audit entry.
type AliasMove struct {
	Model    string    `json:"model"`
	Alias    string    `json:"alias"`
	Version  int       `json:"version"` // 0 when the alias was deleted
	Previous int       `json:"previous,omitempty"`
	Actor    string    `json:"actor,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
	Revision uint64    `json:"revision"` // KV revision of this move
}

// Store is the registry's state on JetStream.
type Store struct {
	js       jetstream.JetStream
	prefix   string
	models   jetstream.KeyValue
	versions jetstream.KeyValue
	aliases  jetstream.KeyValue
	now      func() time.Time
}

// Open creates (or binds to) the buckets and the audit stream under prefix.
func Open(ctx context.Context, js jetstream.JetStream, prefix string) (*Store, error) {
	s := &Store{js: js, prefix: prefix, now: time.Now}
	var err error
	if s.models, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: prefix + modelsBucket, History: 10}); err != nil {
		return nil, fmt.Errorf("models bucket: %w", err)
	}
	if s.versions, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: prefix + versionsBucket, History: 10}); err != nil {
		return nil, fmt.Errorf("versions bucket: %w", err)
	}
	if s.aliases, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: prefix + aliasesBucket, History: 64}); err != nil {
		return nil, fmt.Errorf("aliases bucket: %w", err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: prefix + auditStream,
		Subjects: []string{s.auditSubject("*")}, Duplicates: 10 * time.Minute})
	if err != nil {
		return nil, fmt.Errorf("alias audit stream: %w", err)
	}
	return s, nil
}

func (s *Store) auditSubject(model string) string { return s.prefix + "registry.alias." + model }

var name = regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`)

// CreateModel registers a model; ErrAlreadyExists when the name is taken.
func (s *Store) CreateModel(ctx context.Context, m Model) (Model, error) {
	if !name.MatchString(m.Name) {
		return Model{}, fmt.Errorf("%w: model names are letters, digits, _ and -", ErrInvalid)
	}
	now := s.now().UTC()
	m.CreatedAt, m.UpdatedAt, m.LatestVersion = now, now, 0
	b, _ := json.Marshal(m)
	if _, err := s.models.Create(ctx, m.Name, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return Model{}, fmt.Errorf("model %s: %w", m.Name, ErrAlreadyExists)
		}
		return Model{}, fmt.Errorf("create model %s: %w", m.Name, err)
	}
	return m, nil
}

// GetModel returns a model.
func (s *Store) GetModel(ctx context.Context, model string) (Model, error) {
	m, _, err := s.getModel(ctx, model)
	return m, err
}

func (s *Store) getModel(ctx context.Context, model string) (Model, uint64, error) {
	if !name.MatchString(model) {
		return Model{}, 0, fmt.Errorf("model %q: %w", model, ErrNotFound)
	}
	e, err := s.models.Get(ctx, model)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Model{}, 0, fmt.Errorf("model %s: %w", model, ErrNotFound)
	}
	if err != nil {
		return Model{}, 0, fmt.Errorf("get model %s: %w", model, err)
	}
	var m Model
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return Model{}, 0, fmt.Errorf("decode model %s: %w", model, err)
	}
	return m, e.Revision(), nil
}

// updateModel applies change to the model with revision-checked writes, retrying on
// conflicts, and returns the model as written.
func (s *Store) updateModel(ctx context.Context, model string, change func(*Model) error) (Model, error) {
	for {
		m, rev, err := s.getModel(ctx, model)
		if err != nil {
			return Model{}, err
		}
		if err := change(&m); err != nil {
			return Model{}, err
		}
		m.UpdatedAt = s.now().UTC()
		b, _ := json.Marshal(m)
		_, err = s.models.Update(ctx, model, b, rev)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return Model{}, fmt.Errorf("update model %s: %w", model, err)
		}
		if ctx.Err() != nil {
			return Model{}, ctx.Err()
		}
	}
}

func versionKey(model string, version int) string { return model + "." + strconv.Itoa(version) }

// CreateVersion allocates the model's next version number — consecutive, never reused, even
// with concurrent writers — and stores the version.
func (s *Store) CreateVersion(ctx context.Context, v Version) (Version, error) {
	m, err := s.updateModel(ctx, v.Model, func(m *Model) error { m.LatestVersion++; return nil })
	if err != nil {
		return Version{}, err
	}
	v.Version, v.CreatedAt = m.LatestVersion, s.now().UTC()
	b, _ := json.Marshal(v)
	if _, err := s.versions.Create(ctx, versionKey(v.Model, v.Version), b); err != nil {
		return Version{}, fmt.Errorf("store version %d of %s: %w", v.Version, v.Model, err)
	}
	return v, nil
}

// GetVersion returns one version.
func (s *Store) GetVersion(ctx context.Context, model string, version int) (Version, error) {
	e, err := s.versions.Get(ctx, versionKey(model, version))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return Version{}, fmt.Errorf("version %d of %s: %w", version, model, ErrNotFound)
	}
	if err != nil {
		return Version{}, fmt.Errorf("get version %d of %s: %w", version, model, err)
	}
	var v Version
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return Version{}, fmt.Errorf("decode version %d of %s: %w", version, model, err)
	}
	return v, nil
}

func aliasKey(model, alias string) string { return model + "." + alias }

// GetAlias returns an alias's current state.
func (s *Store) GetAlias(ctx context.Context, model, alias string) (AliasMove, error) {
	mv, _, err := s.getAlias(ctx, model, alias)
	return mv, err
}

func (s *Store) getAlias(ctx context.Context, model, alias string) (AliasMove, uint64, error) {
	if !name.MatchString(alias) {
		return AliasMove{}, 0, fmt.Errorf("%w: alias names are letters, digits, _ and -", ErrInvalid)
	}
	e, err := s.aliases.Get(ctx, aliasKey(model, alias))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return AliasMove{}, 0, fmt.Errorf("alias %s of %s: %w", alias, model, ErrNotFound)
	}
	if err != nil {
		return AliasMove{}, 0, fmt.Errorf("get alias %s of %s: %w", alias, model, err)
	}
	var mv AliasMove
	if err := json.Unmarshal(e.Value(), &mv); err != nil {
		return AliasMove{}, 0, fmt.Errorf("decode alias %s of %s: %w", alias, model, err)
	}
	mv.Revision = e.Revision()
	return mv, e.Revision(), nil
}

// SetAlias points alias at version, revision-checked against concurrent moves, and appends
// the move (with the previous version, actor and reason) to the audit stream.
func (s *Store) SetAlias(ctx context.Context, model, alias string, version int, actor, reason string) (AliasMove, error) {
	if _, err := s.GetVersion(ctx, model, version); err != nil {
		return AliasMove{}, err
	}
	for {
		cur, rev, err := s.getAlias(ctx, model, alias)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return AliasMove{}, err
		}
		mv := AliasMove{Model: model, Alias: alias, Version: version, Previous: cur.Version, Actor: actor, Reason: reason, At: s.now().UTC()}
		b, _ := json.Marshal(mv)
		if rev == 0 {
			mv.Revision, err = s.aliases.Create(ctx, aliasKey(model, alias), b)
		} else {
			mv.Revision, err = s.aliases.Update(ctx, aliasKey(model, alias), b, rev)
		}
		if err == nil {
			return mv, s.audit(ctx, mv)
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return AliasMove{}, fmt.Errorf("move alias %s of %s: %w", alias, model, err)
		}
		if ctx.Err() != nil {
			return AliasMove{}, ctx.Err()
		}
	}
}

// Rollback points alias back at the version it held before its last move.
func (s *Store) Rollback(ctx context.Context, model, alias, actor, reason string) (AliasMove, error) {
	cur, err := s.GetAlias(ctx, model, alias)
	if err != nil {
		return AliasMove{}, err
	}
	if cur.Previous == 0 {
		return AliasMove{}, fmt.Errorf("%w: alias %s of %s has no previous version", ErrInvalid, alias, model)
	}
	return s.SetAlias(ctx, model, alias, cur.Previous, actor, "rollback: "+reason)
}

// audit appends a move to the audit stream; the message id makes a retried publish of the
// same move a no-op.
func (s *Store) audit(ctx context.Context, mv AliasMove) error {
	b, _ := json.Marshal(mv)
	id := fmt.Sprintf("%s.%s.%d", mv.Model, mv.Alias, mv.Revision)
	if _, err := s.js.Publish(ctx, s.auditSubject(mv.Model), b, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("audit alias move %s: %w", id, err)
	}
	return nil
}

// AliasHistory returns every recorded move of a model's aliases, oldest first (by revision).
func (s *Store) AliasHistory(ctx context.Context, model string) ([]AliasMove, error) {
	c, err := s.js.OrderedConsumer(ctx, s.prefix+auditStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.auditSubject(model)}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("read alias audit of %s: %w", model, err)
	}
	var out []AliasMove
	for {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			return nil, fmt.Errorf("read alias audit of %s: %w", model, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			var mv AliasMove
			if err := json.Unmarshal(msg.Data(), &mv); err != nil {
				return nil, fmt.Errorf("decode alias audit entry: %w", err)
			}
			out = append(out, mv)
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read alias audit of %s: %w", model, err)
		}
		if n == 0 {
			// Moves are ordered by their KV revision; publishes of concurrent moves may reach
			// the stream in another order.
			sort.Slice(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
			return out, nil
		}
	}
}

// WatchAliases streams the current state of a model's aliases, then every move: what serving
// uses to hot-swap models.
func (s *Store) WatchAliases(ctx context.Context, model string) (jetstream.KeyWatcher, error) {
	return s.aliases.Watch(ctx, model+".*")
}
