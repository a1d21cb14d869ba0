// Package aliaswatch follows the registry's model aliases as they move: a JetStream KV watch
// of the registry's MODEL_ALIASES bucket (key a.<model id>.<alias>, value the move as JSON),
// first the current aliases, then every move, for every model.
package aliaswatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/retry"
)

// Bucket is the registry's alias bucket (after the deployment's prefix).
const Bucket = "MODEL_ALIASES"

// Mover is told where each alias points (version 0: deleted).
type Mover interface {
	Move(model, alias string, version int)
}

// move is the part of the registry's alias record the watch reads.
type move struct {
	Model   string `json:"model"`
	Alias   string `json:"alias"`
	Version int    `json:"version"`
}

// Watcher follows the aliases.
type Watcher struct {
	connect func(ctx context.Context) (jetstream.JetStream, error)
	bucket  string
	mover   Mover
	only    map[string]bool // nil: every model
	log     *zap.Logger
	synced  func() // called once the current aliases were all applied
}

// New returns a watcher of the registry deployment with the given prefix (its
// FLYWHEEL_REGISTRY_PREFIX); connect is called (again) whenever the watch must be set up.
// models, when not empty, limits the watch to those models. synced (may be nil) is called
// after each initial pass over the current aliases.
func New(connect func(ctx context.Context) (jetstream.JetStream, error), prefix string, mover Mover, models []string, synced func(), log *zap.Logger) *Watcher {
	w := &Watcher{connect: connect, bucket: prefix + Bucket, mover: mover, log: log, synced: synced}
	if len(models) > 0 {
		w.only = map[string]bool{}
		for _, m := range models {
			w.only[m] = true
		}
	}
	return w
}

// Run watches until ctx ends. It never fails: while the registry cannot be reached it keeps
// trying (logging the outage sparingly) and serving goes on with what it has.
func (w *Watcher) Run(ctx context.Context) error {
	notify := retry.Logged(w.log, "watch the registry's aliases; serving goes on with the versions it has")
	_ = retry.Do(ctx, retry.Backoff{Initial: 500 * time.Millisecond, Max: 15 * time.Second}, w.watch, notify)
	return nil
}

var errWatchEnded = errors.New("the alias watch ended")

func (w *Watcher) watch(ctx context.Context) error {
	js, err := w.connect(ctx)
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, w.bucket)
	if err != nil {
		return fmt.Errorf("alias bucket %s (has the registry run yet?): %w", w.bucket, err)
	}
	watch, err := kv.Watch(ctx, "a.*.*")
	if err != nil {
		return fmt.Errorf("watch %s: %w", w.bucket, err)
	}
	defer watch.Stop()
	keys := map[string]move{} // key → the move last seen there, so a delete names its alias
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-watch.Updates():
			if !ok {
				return errWatchEnded
			}
			if e == nil {
				if w.synced != nil {
					w.synced()
				}
				continue
			}
			w.apply(keys, e)
		}
	}
}

func (w *Watcher) apply(keys map[string]move, e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		m, ok := keys[e.Key()]
		if !ok {
			return
		}
		delete(keys, e.Key())
		if w.wanted(m.Model) {
			w.mover.Move(m.Model, m.Alias, 0)
		}
		return
	}
	var m move
	if err := json.Unmarshal(e.Value(), &m); err != nil || m.Model == "" || m.Alias == "" {
		w.log.Warn("an alias record serving cannot read; ignored", zap.String("key", e.Key()), zap.Uint64("revision", e.Revision()))
		return
	}
	if parts := strings.Split(e.Key(), "."); len(parts) != 3 || parts[2] != m.Alias {
		w.log.Warn("an alias record under an unexpected key; ignored", zap.String("key", e.Key()))
		return
	}
	keys[e.Key()] = m
	if w.wanted(m.Model) {
		w.mover.Move(m.Model, m.Alias, m.Version)
	}
}

func (w *Watcher) wanted(model string) bool { return w.only == nil || w.only[model] }
