// Package online is the Redis online store: one binary state blob per (view version, entity),
// expiring after the view's TTL, and one applied-offset key per (view version, topic,
// partition). State updates of a batch and the partition offsets they advance are written in
// one Lua script that first checks the offsets are still the ones the batch started from, so
// a redelivered or zombie batch can never apply twice.
//
// Layout (prefix default "fw:f:"):
//
//	<prefix>s:<view>:<version>:<entity>             state blob (agg.Engine.Encode), PX = TTL
//	<prefix>o:<view>:<version>:<topic>:<partition>  last applied offset
package online

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flywheel-ml/flywheel/services/features/views"
)

// ErrOffsetMoved means another writer applied the partition since the batch read its offset.
var ErrOffsetMoved = errors.New("partition offset moved: another writer applied this partition")

// Store reads and writes the online state.
type Store struct {
	client redis.UniversalClient
	prefix string
	reads  *coalescer
}

// New returns a store with keys under prefix. Concurrent reads share round trips, at most
// GOMAXPROCS in flight (see coalescer).
func New(client redis.UniversalClient, prefix string) *Store {
	return &Store{client: client, prefix: prefix, reads: newCoalescer(client, runtime.GOMAXPROCS(0))}
}

// StateKey is the key of an entity's state.
func (s *Store) StateKey(v *views.View, entity string) string {
	return s.prefix + "s:" + v.Name + ":" + v.Version + ":" + entity
}

func (s *Store) offsetKey(v *views.View, topic string, partition int) string {
	return s.prefix + "o:" + v.Name + ":" + v.Version + ":" + topic + ":" + strconv.Itoa(partition)
}

// Partition names a topic partition.
type Partition struct {
	Topic     string
	Partition int
}

// Offsets returns the last applied offset of each partition (-1 when none).
func (s *Store) Offsets(ctx context.Context, v *views.View, parts []Partition) ([]int64, error) {
	keys := make([]string, len(parts))
	for i, p := range parts {
		keys[i] = s.offsetKey(v, p.Topic, p.Partition)
	}
	vals, err := s.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("read applied offsets of %s: %w", v.Name, err)
	}
	out := make([]int64, len(parts))
	for i, val := range vals {
		out[i] = -1
		if str, ok := val.(string); ok {
			if out[i], err = strconv.ParseInt(str, 10, 64); err != nil {
				return nil, fmt.Errorf("offset key %s holds %q", keys[i], str)
			}
		}
	}
	return out, nil
}

// States returns the state blobs of entities (nil for unknown ones), in one round trip.
func (s *Store) States(ctx context.Context, v *views.View, entities []string) ([][]byte, error) {
	if len(entities) == 0 {
		return nil, nil
	}
	keys := make([]string, len(entities))
	for i, e := range entities {
		keys[i] = s.StateKey(v, e)
	}
	vals, err := s.reads.mget(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read %d states of %s: %w", len(keys), v.Name, err)
	}
	out := make([][]byte, len(vals))
	for i, val := range vals {
		if str, ok := val.(string); ok {
			out[i] = []byte(str)
		}
	}
	return out, nil
}

// commitScript: KEYS = n offset keys, then state keys; ARGV = n, ttl ms, n expected offsets,
// n new offsets, then one blob per state key.
var commitScript = redis.NewScript(`
local n = tonumber(ARGV[1])
for i = 1, n do
  local cur = redis.call('GET', KEYS[i])
  if (cur or '-1') ~= ARGV[2 + i] then return 0 end
end
for i = 1, n do redis.call('SET', KEYS[i], ARGV[2 + n + i]) end
for i = n + 1, #KEYS do redis.call('SET', KEYS[i], ARGV[2 + n + i], 'PX', ARGV[2]) end
return 1`)

// Commit writes the states and advances the partitions from expected to next offsets,
// atomically, or returns ErrOffsetMoved without writing anything.
func (s *Store) Commit(ctx context.Context, v *views.View, parts []Partition, expected, next []int64,
	entities []string, blobs [][]byte) error {
	keys := make([]string, 0, len(parts)+len(entities))
	args := make([]any, 0, 2+2*len(parts)+len(blobs))
	args = append(args, len(parts), time.Duration(v.TTL).Milliseconds())
	for _, p := range parts {
		keys = append(keys, s.offsetKey(v, p.Topic, p.Partition))
	}
	for _, o := range expected {
		args = append(args, strconv.FormatInt(o, 10))
	}
	for _, o := range next {
		args = append(args, strconv.FormatInt(o, 10))
	}
	for i, e := range entities {
		keys = append(keys, s.StateKey(v, e))
		args = append(args, blobs[i])
	}
	ok, err := commitScript.Run(ctx, s.client, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("commit %d states of %s: %w", len(entities), v.Name, err)
	}
	if ok != 1 {
		return ErrOffsetMoved
	}
	return nil
}

func (s *Store) cutKey(v *views.View) string { return s.prefix + "cut:" + v.Name + ":" + v.Version }

// Cut returns the ingestion time (ms) up to which a backfill rebuilt the view: live events
// ingested at or before it are already in the state. 0 when the view was never backfilled.
func (s *Store) Cut(ctx context.Context, v *views.View) (int64, error) {
	n, err := s.client.Get(ctx, s.cutKey(v)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read backfill cut of %s: %w", v.Name, err)
	}
	return n, nil
}

// SetCut records a backfill's cut.
func (s *Store) SetCut(ctx context.Context, v *views.View, cut int64) error {
	return s.client.Set(ctx, s.cutKey(v), cut, 0).Err()
}

// DropStates deletes every state of the view version (not the partition offsets).
func (s *Store) DropStates(ctx context.Context, v *views.View) (int, error) {
	iter := s.client.Scan(ctx, 0, s.prefix+"s:"+v.Name+":"+v.Version+":*", 1000).Iterator()
	var batch []string
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := s.client.Del(ctx, batch...).Err(); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// PutStates writes states with the view's TTL, pipelined.
func (s *Store) PutStates(ctx context.Context, v *views.View, entities []string, blobs [][]byte) error {
	pipe := s.client.Pipeline()
	for i, e := range entities {
		pipe.Set(ctx, s.StateKey(v, e), blobs[i], time.Duration(v.TTL))
	}
	_, err := pipe.Exec(ctx)
	return err
}
