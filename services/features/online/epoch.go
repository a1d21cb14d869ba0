package online

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/flywheel-ml/flywheel/services/features/views"
)

// The epoch key of a view version names the generation of its online state: it is written
// with a fresh random value whenever the state is (re)built. A missing or changed epoch means
// Redis no longer holds the state this process built on — it was lost, flushed or rebuilt by
// another process — so what it holds must not be trusted as complete.
func (s *Store) epochKey(v *views.View) string { return s.prefix + "epoch:" + v.Name + ":" + v.Version }

// Epochs returns the epoch of each view ("" when absent), in one round trip.
func (s *Store) Epochs(ctx context.Context, vs []*views.View) ([]string, error) {
	keys := make([]string, len(vs))
	for i, v := range vs {
		keys[i] = s.epochKey(v)
	}
	vals, err := s.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("read online store epochs: %w", err)
	}
	out := make([]string, len(vs))
	for i, val := range vals {
		out[i], _ = val.(string)
	}
	return out, nil
}

// SetEpoch records a new generation of the view's state.
func (s *Store) SetEpoch(ctx context.Context, v *views.View, epoch string) error {
	if err := s.client.Set(ctx, s.epochKey(v), epoch, 0).Err(); err != nil {
		return fmt.Errorf("write the online store epoch of %s: %w", v.Name, err)
	}
	return nil
}

// DropOffsets deletes the view version's stored partition offsets.
func (s *Store) DropOffsets(ctx context.Context, v *views.View) error {
	iter := s.client.Scan(ctx, 0, s.prefix+"o:"+v.Name+":"+v.Version+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("list offsets of %s: %w", v.Name, err)
	}
	if len(keys) == 0 {
		return nil
	}
	if err := s.client.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("drop offsets of %s: %w", v.Name, err)
	}
	return nil
}

// StatesEpoch is States plus the view's epoch, read in the same round trip.
func (s *Store) StatesEpoch(ctx context.Context, v *views.View, entities []string) ([][]byte, string, error) {
	keys := make([]string, len(entities)+1)
	for i, e := range entities {
		keys[i] = s.StateKey(v, e)
	}
	keys[len(entities)] = s.epochKey(v)
	vals, err := s.reads.mget(ctx, keys)
	if err != nil {
		return nil, "", fmt.Errorf("read %d states of %s: %w", len(entities), v.Name, err)
	}
	out := make([][]byte, len(entities))
	for i := range entities {
		if str, ok := vals[i].(string); ok {
			out[i] = []byte(str)
		}
	}
	epoch, _ := vals[len(entities)].(string)
	return out, epoch, nil
}

// swapEpoch sets KEYS[1] to ARGV[2] only if it holds ARGV[1].
var swapEpoch = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0`)

// SwapEpoch replaces the view's epoch prev by next, atomically, and reports whether prev was
// still there.
func (s *Store) SwapEpoch(ctx context.Context, v *views.View, prev, next string) (bool, error) {
	n, err := swapEpoch.Run(ctx, s.client, []string{s.epochKey(v)}, prev, next).Int()
	if err != nil {
		return false, fmt.Errorf("swap the online store epoch of %s: %w", v.Name, err)
	}
	return n == 1, nil
}
