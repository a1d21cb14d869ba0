package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// bucket is one KV bucket with the highest revision this process wrote to it, so a read
// served from a projection (ClickHouse, the in-memory indexes) can first wait for it:
// read-your-writes within one registry process.
type bucket struct {
	kv jetstream.KeyValue
	watermark
}

// watermark is the highest revision or sequence this process wrote somewhere.
type watermark struct{ wrote atomic.Uint64 }

func (w *watermark) written(rev uint64) uint64 {
	for {
		cur := w.wrote.Load()
		if rev <= cur || w.wrote.CompareAndSwap(cur, rev) {
			return rev
		}
	}
}

func openBucket(ctx context.Context, js jetstream.JetStream, name string, history uint8) (*bucket, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: history})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	return &bucket{kv: kv}, nil
}

func missing(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) ||
		errors.Is(err, jetstream.ErrInvalidKey)
}

func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// getJSON reads and decodes key; ErrNotFound (wrapped with what) when it does not exist.
func getJSON[T any](ctx context.Context, b *bucket, key, what string) (T, uint64, error) {
	var v T
	e, err := b.kv.Get(ctx, key)
	if missing(err) {
		return v, 0, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return v, 0, fmt.Errorf("get %s: %w", what, err)
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return v, 0, fmt.Errorf("decode %s: %w", what, err)
	}
	return v, e.Revision(), nil
}

// createJSON writes key only if it does not exist; ErrAlreadyExists otherwise.
func createJSON(ctx context.Context, b *bucket, key, what string, v any) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", what, err)
	}
	rev, err := b.kv.Create(ctx, key, data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%s: %w", what, ErrAlreadyExists)
	}
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", what, err)
	}
	return b.written(rev), nil
}

// updateJSON applies change to key's current value with a revision-checked write, retrying
// on conflicts, so concurrent writers never lose an update. change may refuse with an error.
func updateJSON[T any](ctx context.Context, b *bucket, key, what string, change func(*T) error) (T, uint64, error) {
	for {
		v, rev, err := getJSON[T](ctx, b, key, what)
		if err != nil {
			return v, 0, err
		}
		if err := change(&v); err != nil {
			return v, 0, err
		}
		data, err := json.Marshal(v)
		if err != nil {
			return v, 0, fmt.Errorf("encode %s: %w", what, err)
		}
		newRev, err := b.kv.Update(ctx, key, data, rev)
		if err == nil {
			return v, b.written(newRev), nil
		}
		if !conflict(err) {
			return v, 0, fmt.Errorf("update %s: %w", what, err)
		}
		if ctx.Err() != nil {
			return v, 0, ctx.Err()
		}
	}
}

// deleteKey deletes key; a key already gone is not an error.
func deleteKey(ctx context.Context, b *bucket, key, what string) error {
	if err := b.kv.Delete(ctx, key); err != nil && !missing(err) {
		return fmt.Errorf("delete %s: %w", what, err)
	}
	return b.deleted(ctx, what)
}

// deleted records the bucket's last revision after a delete (which reports none): a delete
// is a write too, and reads from projections must wait for it.
func (b *bucket) deleted(ctx context.Context, what string) error {
	st, err := b.kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("delete %s: read bucket status: %w", what, err)
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		b.written(bs.StreamInfo().State.LastSeq)
	}
	return nil
}

// nameKey encodes a free-form name (experiment and model names may hold any character) into
// the KV key alphabet.
func nameKey(name string) string {
	return "n." + base64.RawURLEncoding.EncodeToString([]byte(name))
}

// nextSeq returns the counter at key (start the first time) and advances it, revision-checked:
// a race-free allocator.
func nextSeq(ctx context.Context, b *bucket, key string, start int64) (int64, error) {
	type counter struct {
		Next int64 `json:"next"`
	}
	what := "counter " + key
	advance := func(c *counter) error { c.Next++; return nil }
	c, _, err := updateJSON(ctx, b, key, what, advance)
	if errors.Is(err, ErrNotFound) {
		if _, err := createJSON(ctx, b, key, what, counter{Next: start}); err != nil && !errors.Is(err, ErrAlreadyExists) {
			return 0, err
		}
		c, _, err = updateJSON(ctx, b, key, what, advance)
	}
	return c.Next - 1, err
}

// listJSON decodes the current value of every key matching filter ("e.*"), in one pass of a
// watcher (the server pushes the values; no round trip per key).
func listJSON[T any](ctx context.Context, b *bucket, filter, what string) ([]T, error) {
	w, err := b.kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	defer func() { _ = w.Stop() }()
	var out []T
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("list %s: watcher closed", what)
			}
			if e == nil { // the initial values are all delivered
				return out, nil
			}
			var v T
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				return nil, fmt.Errorf("decode %s %s: %w", what, e.Key(), err)
			}
			out = append(out, v)
		}
	}
}
