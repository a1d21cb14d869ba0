package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flywheel-ml/flywheel/schemas"
)

// AliasMove is one alias change: the current state of an alias and an audit entry.
type AliasMove struct {
	ModelID  string    `json:"model_id"`
	Model    string    `json:"model"`
	Alias    string    `json:"alias"`
	Version  int       `json:"version"` // 0 when the alias was deleted
	Previous int       `json:"previous,omitempty"`
	Action   string    `json:"action,omitempty"` // AliasMoved, AliasRolledBack or AliasDeleted
	Actor    string    `json:"actor,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	RunID    string    `json:"run_id,omitempty"`   // the run that produced Version (its lineage)
	Trigger  string    `json:"trigger,omitempty"`  // why that run ran: drift:<event id>, manual, schedule
	EventID  string    `json:"event_id,omitempty"` // id of the move's event on the registry topic
	At       time.Time `json:"at"`
	Revision uint64    `json:"revision"` // KV revision of this move
}

// Actions of an alias move. Moves audited before actions were recorded have none; MoveAction
// derives it.
const (
	AliasMoved      = "moved"
	AliasRolledBack = "rollback"
	AliasDeleted    = "deleted"
)

// MoveAction is the move's action, derived for moves audited before actions were recorded.
func (mv AliasMove) MoveAction() string {
	switch {
	case mv.Action != "":
		return mv.Action
	case mv.Version == 0:
		return AliasDeleted
	case strings.HasPrefix(mv.Reason, rollbackReason):
		return AliasRolledBack
	}
	return AliasMoved
}

const rollbackReason = "rollback: "

func aliasKey(modelID, alias string) string { return "a." + modelID + "." + alias }

// MLflow's alias rule: word characters and dashes; "latest" and vN are reserved.
var (
	aliasName     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	reservedAlias = regexp.MustCompile(`^(?i:latest|v\d+)$`)
)

func validAlias(alias string) error {
	if !aliasName.MatchString(alias) {
		return invalidf("alias '%s' must be 1 to 255 letters, digits, '_' or '-'", alias)
	}
	if reservedAlias.MatchString(alias) {
		return invalidf("alias '%s' is reserved: 'latest' and 'v<number>' name versions", alias)
	}
	return nil
}

// GetAlias returns an alias's current state.
func (s *Store) GetAlias(ctx context.Context, name, alias string) (AliasMove, error) {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return AliasMove{}, err
	}
	mv, _, err := s.getAlias(ctx, m, alias)
	return mv, err
}

func (s *Store) getAlias(ctx context.Context, m Model, alias string) (AliasMove, uint64, error) {
	if err := validAlias(alias); err != nil {
		return AliasMove{}, 0, err
	}
	mv, rev, err := getJSON[AliasMove](ctx, s.aliases, aliasKey(m.ID, alias), "alias")
	if errors.Is(err, ErrNotFound) {
		return AliasMove{}, 0, fmt.Errorf("registered model alias %s not found on model %s: %w", alias, m.Name, ErrNotFound)
	}
	mv.Model, mv.Revision = m.Name, rev
	return mv, rev, err
}

// Aliases returns a model's aliases, by name.
func (s *Store) Aliases(ctx context.Context, name string) ([]AliasMove, error) {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return nil, err
	}
	out, err := listJSON[AliasMove](ctx, s.aliases, "a."+m.ID+".*", "aliases")
	for i := range out {
		out[i].Model = m.Name
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alias < out[j].Alias })
	return out, err
}

// SetAlias points alias at version, revision-checked against concurrent moves, and appends
// the move (with the previous version, actor, reason and the version's run and trigger) to
// the audit stream.
func (s *Store) SetAlias(ctx context.Context, name, alias string, version int, actor, reason string) (AliasMove, error) {
	return s.setAlias(ctx, name, alias, version, actor, reason, AliasMoved)
}

func (s *Store) setAlias(ctx context.Context, name, alias string, version int, actor, reason, action string) (AliasMove, error) {
	if err := validAlias(alias); err != nil {
		return AliasMove{}, err
	}
	v, err := s.GetVersion(ctx, name, version)
	if err != nil {
		return AliasMove{}, err
	}
	for {
		m := Model{ID: v.ModelID, Name: v.Name}
		cur, rev, err := s.getAlias(ctx, m, alias)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return AliasMove{}, err
		}
		mv := AliasMove{ModelID: m.ID, Model: m.Name, Alias: alias, Version: version, Previous: cur.Version,
			Action: action, Actor: actor, Reason: reason, RunID: v.RunID, EventID: newEventID(), At: s.now().UTC()}
		if v.Lineage != nil {
			mv.Trigger = v.Lineage.Trigger
			if mv.RunID == "" {
				mv.RunID = v.Lineage.RunID
			}
		}
		data, _ := json.Marshal(mv)
		if rev == 0 {
			mv.Revision, err = s.aliases.kv.Create(ctx, aliasKey(m.ID, alias), data)
		} else {
			mv.Revision, err = s.aliases.kv.Update(ctx, aliasKey(m.ID, alias), data, rev)
		}
		if err == nil {
			s.aliases.written(mv.Revision)
			if err := s.audit(ctx, mv, fmt.Sprintf("%s.%s.%d", m.ID, alias, mv.Revision)); err != nil {
				return mv, err
			}
			s.notify.Notify(ctx, schemas.RegistryEvent{ID: mv.EventID, Type: schemas.RegistryAliasMoved, Model: m.Name, Alias: alias,
				Version: version, PreviousVersion: cur.Version, Actor: actor, Reason: reason, At: mv.At})
			return mv, nil
		}
		if !conflict(err) {
			return AliasMove{}, fmt.Errorf("move alias %s of %s: %w", alias, name, err)
		}
		if ctx.Err() != nil {
			return AliasMove{}, ctx.Err()
		}
	}
}

// DeleteAlias removes an alias (revision-checked) and audits it as a move to version 0.
func (s *Store) DeleteAlias(ctx context.Context, name, alias, actor, reason string) error {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return err
	}
	for {
		cur, rev, err := s.getAlias(ctx, m, alias)
		if err != nil {
			return err
		}
		err = s.aliases.kv.Delete(ctx, aliasKey(m.ID, alias), jetstream.LastRevision(rev))
		if conflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete alias %s of %s: %w", alias, name, err)
		}
		// The delete marker's revision is not returned; rev+1 is at most it, so the entry
		// still sorts after the move it undid and before any later move.
		mv := AliasMove{ModelID: m.ID, Model: m.Name, Alias: alias, Previous: cur.Version, Action: AliasDeleted, Actor: actor,
			Reason: reason, EventID: newEventID(), At: s.now().UTC(), Revision: rev + 1}
		if err := s.aliases.deleted(ctx, "alias"); err != nil {
			return err
		}
		if err := s.audit(ctx, mv, fmt.Sprintf("%s.%s.deleted.%d", m.ID, alias, rev)); err != nil {
			return err
		}
		s.notify.Notify(ctx, schemas.RegistryEvent{ID: mv.EventID, Type: schemas.RegistryAliasDeleted, Model: m.Name, Alias: alias,
			PreviousVersion: cur.Version, Actor: actor, Reason: reason, At: mv.At})
		return nil
	}
}

// Rollback points alias back at the version it held before its last move.
func (s *Store) Rollback(ctx context.Context, name, alias, actor, reason string) (AliasMove, error) {
	cur, err := s.GetAlias(ctx, name, alias)
	if err != nil {
		return AliasMove{}, err
	}
	if cur.Previous == 0 {
		return AliasMove{}, invalidf("alias %s of %s has no previous version to roll back to", alias, name)
	}
	return s.setAlias(ctx, name, alias, cur.Previous, actor, rollbackReason+reason, AliasRolledBack)
}

// audit appends a move to the audit stream; the message id makes a retried publish of the
// same move a no-op.
func (s *Store) audit(ctx context.Context, mv AliasMove, id string) error {
	data, _ := json.Marshal(mv)
	if _, err := s.js.Publish(ctx, s.auditSubject(mv.ModelID), data, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("audit alias move %s: %w", id, err)
	}
	return nil
}

// AliasHistory returns every recorded move of a model's aliases, oldest first (by revision).
func (s *Store) AliasHistory(ctx context.Context, name string) ([]AliasMove, error) {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return nil, err
	}
	c, err := s.js.OrderedConsumer(ctx, s.prefix+auditStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.auditSubject(m.ID)}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("read alias audit of %s: %w", name, err)
	}
	var out []AliasMove
	for {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			return nil, fmt.Errorf("read alias audit of %s: %w", name, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			var mv AliasMove
			if err := json.Unmarshal(msg.Data(), &mv); err != nil {
				return nil, fmt.Errorf("decode alias audit entry: %w", err)
			}
			mv.Model = m.Name
			out = append(out, mv)
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read alias audit of %s: %w", name, err)
		}
		if n == 0 {
			// Moves are ordered by their KV revision; publishes of concurrent moves may reach
			// the stream in another order.
			sort.SliceStable(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
			return out, nil
		}
	}
}

// WatchAliases streams the current state of a model's aliases, then every move: what serving
// uses to hot-swap models. Entries are AliasMove JSON; deletes arrive as delete operations.
func (s *Store) WatchAliases(ctx context.Context, name string) (jetstream.KeyWatcher, error) {
	m, err := s.GetModel(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.aliases.kv.Watch(ctx, "a."+m.ID+".*")
}
