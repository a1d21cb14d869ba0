// Package dedupe remembers which event ids a stream has already written, in Redis, so an
// event id seen within the horizon produces no second events.<stream> record — across
// restarts and across ingest replicas.
//
// An id is claimed before its event is produced and confirmed after the broker acknowledged
// it. A claim that was never confirmed (the producer failed, or the process died) is not a
// duplicate: the event is written again, so nothing accepted is ever lost. Only confirmed ids
// count as duplicates.
package dedupe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// State of an id after Claim.
type State uint8

// Claim outcomes.
const (
	Fresh     State = iota // first sighting: this caller claimed it
	Duplicate              // confirmed earlier within the horizon: do not write again
	Unsettled              // claimed by a writer that has not confirmed (yet, or ever): write anyway
)

// Store is the Redis-backed id memory.
type Store struct {
	client     redis.UniversalClient
	prefix     string
	horizon    time.Duration
	pendingTTL time.Duration
}

// New returns a store keeping confirmed ids for horizon under keys starting with prefix.
func New(client redis.UniversalClient, prefix string, horizon time.Duration) *Store {
	return &Store{client: client, prefix: prefix, horizon: horizon, pendingTTL: time.Minute}
}

func (s *Store) key(stream, id string) string {
	if len(id) > 200 {
		sum := sha256.Sum256([]byte(id))
		id = "sha256:" + hex.EncodeToString(sum[:])
	}
	return s.prefix + stream + ":" + id
}

// Claim reserves ids (distinct within the call) of stream, in one round trip.
func (s *Store) Claim(ctx context.Context, stream string, ids []string) ([]State, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	// SET NX GET (Redis 7) claims and reads the previous state in one command.
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StatusCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.SetArgs(ctx, s.key(stream, id), "p", redis.SetArgs{Mode: "NX", TTL: s.pendingTTL, Get: true})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("claim %d event ids of %s: %w", len(ids), stream, err)
	}
	states := make([]State, len(ids))
	for i, c := range cmds {
		switch {
		case errors.Is(c.Err(), redis.Nil):
			states[i] = Fresh
		case c.Err() != nil:
			return nil, fmt.Errorf("claim event id of %s: %w", stream, c.Err())
		case c.Val() == "d":
			states[i] = Duplicate
		default:
			states[i] = Unsettled
		}
	}
	return states, nil
}

// Confirm marks ids as written, for the horizon.
func (s *Store) Confirm(ctx context.Context, stream string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	pipe := s.client.Pipeline()
	for _, id := range ids {
		pipe.Set(ctx, s.key(stream, id), "d", s.horizon)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("confirm %d event ids of %s: %w", len(ids), stream, err)
	}
	return nil
}

// Release drops claims whose events were not written, so a retry is not delayed.
func (s *Store) Release(ctx context.Context, stream string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.key(stream, id)
	}
	pipe := s.client.Pipeline()
	for _, k := range keys {
		// Only our own unconfirmed claims: never forget a confirmed id.
		pipe.Eval(ctx, `if redis.call('GET', KEYS[1]) == 'p' then return redis.call('DEL', KEYS[1]) end return 0`, []string{k})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("release %d event ids of %s: %w", len(ids), stream, err)
	}
	return nil
}
