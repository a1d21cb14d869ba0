package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/services/features/views"
)

// Online-store loss. Redis holds each view's states together with the Kafka offsets they
// include. If Redis loses them (a restart without persistence, a flush, a failover to a
// replica behind, or an append-only file that lost its last second), the consumer group's
// committed offsets are still ahead, so the events in between would never be applied again:
// lookups would silently serve counts that are too low. Two signs reveal it:
//
//   - the view's epoch key (written whenever its state is built) is missing or changed — a
//     flush or a lost store, noticed before every batch and every WatchInterval while idle;
//   - a partition's first delivered offset is past the offset stored with the states plus
//     one — Redis is behind the consumer group, even with the epoch still there.
//
// Either way the view is rebuilt by a backfill from the event log (which holds every event
// ingested up to the backfill's cut); meanwhile lookups of the view answer 503
// online_store_rebuilding, and the rebuild is counted, logged and recorded in ClickHouse
// (feature_rebuilds).

// WatchInterval is how often an idle processor checks the epochs.
const WatchInterval = 2 * time.Second

// rebuildWait bounds how long a rebuild waits for the event log to reach its cut.
const rebuildWait = 2 * time.Minute

// errStoreBehind is returned while preparing a partition whose stored offset is behind the
// consumer group's position.
type errStoreBehind struct {
	view           string
	applied, first int64
	topic          string
	partition      int
}

func (e *errStoreBehind) Error() string {
	return fmt.Sprintf("online store of %s is behind the consumer: %s/%d applied up to offset %d, next delivered %d",
		e.view, e.topic, e.partition, e.applied, e.first)
}

// KnownEpoch is the epoch of the online state this process built on or adopted ("" before
// the first check). Lookups compare it with the epoch Redis holds.
func (p *Processor) KnownEpoch(view string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epochs[view]
}

func (p *Processor) setEpoch(view, epoch string) {
	p.mu.Lock()
	p.epochs[view] = epoch
	p.mu.Unlock()
}

// Rebuilding reports whether view's online state is being rebuilt (lookups must not trust it).
func (p *Processor) Rebuilding(view string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rebuilding[view]
}

// OnlineCheck is a readiness probe: it fails while a view is rebuilt.
func (p *Processor) OnlineCheck(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for view, on := range p.rebuilding {
		if on {
			return fmt.Errorf("online store of %s is being rebuilt from the event log", view)
		}
	}
	return nil
}

// Watch checks the epochs every WatchInterval until ctx ends, rebuilding lost views.
func (p *Processor) Watch(ctx context.Context) error {
	t := time.NewTicker(WatchInterval)
	defer t.Stop()
	for {
		if err := p.EnsureOnline(ctx); err != nil && ctx.Err() == nil {
			return err // the supervisor restarts the watch after a backoff
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// EnsureOnline compares every view's epoch with the one this process knows and rebuilds the
// views whose state was lost. The first call adopts the epochs it finds.
func (p *Processor) EnsureOnline(ctx context.Context) error {
	p.ensureMu.Lock()
	defer p.ensureMu.Unlock()
	names := p.catalog.Names()
	vs := make([]*views.View, len(names))
	for i, n := range names {
		vs[i], _ = p.catalog.Get(n)
	}
	epochs, err := p.store.Epochs(ctx, vs)
	if err != nil {
		return err
	}
	for i, v := range vs {
		known := p.KnownEpoch(v.Name)
		switch {
		case epochs[i] == "" && known == "":
			// Starting on a store without this view's epoch: a first start, or a store lost
			// while the service was down. The offline log tells them apart.
			computed, err := p.everComputed(ctx, v)
			if err != nil {
				return err
			}
			if !computed {
				if err := p.newEpoch(ctx, v); err != nil {
					return err
				}
				continue
			}
			if err := p.rebuild(ctx, v, "the online store holds no state of a view computed before: it was lost while the service was down"); err != nil {
				return err
			}
		case epochs[i] == "":
			if err := p.rebuild(ctx, v, "the view's epoch key disappeared: the online store was lost or flushed"); err != nil {
				return err
			}
		case known == "":
			p.setEpoch(v.Name, epochs[i]) // first look: the state this process starts on
		case epochs[i] != known:
			// Another process rebuilt the view: its states replaced the ones cached here.
			p.log.Info("online store rebuilt elsewhere; dropping cached states", zap.String("view", v.Name))
			p.mu.Lock()
			clear(p.parts[v.Name])
			delete(p.cuts, v.Name)
			p.mu.Unlock()
			p.setEpoch(v.Name, epochs[i])
		}
	}
	return nil
}

// rebuild backfills v from the event log under a new epoch. The caller holds ensureMu.
func (p *Processor) rebuild(ctx context.Context, v *views.View, reason string) error {
	detected := time.Now()
	p.log.Warn("online store lost; rebuilding the view from the event log", zap.String("view", v.Name), zap.String("reason", reason))
	p.setRebuilding(v.Name, true)
	defer p.setRebuilding(v.Name, false)
	p.m.rebuilds.WithLabelValues(v.Name).Inc()
	// The backfill's cut is the newest ingestion time this process applied (it waits for the
	// event log to reach it), so everything applied before the loss is in the rebuild.
	rep, err := p.Backfill(ctx, v.Name, rebuildWait)
	if err != nil {
		return fmt.Errorf("rebuild %s after online store loss: %w", v.Name, err)
	}
	// Offsets that survived a partial loss are behind and would flag the store again; the
	// cut now decides which delivered events are new.
	if err := p.store.DropOffsets(ctx, v); err != nil {
		return err
	}
	p.mu.Lock()
	clear(p.parts[v.Name])
	p.mu.Unlock()
	if err := p.newEpoch(ctx, v); err != nil {
		return err
	}
	if err := p.recordRebuild(ctx, v, reason, detected, rep); err != nil {
		p.log.Warn("rebuild not recorded in feature_rebuilds", zap.String("view", v.Name), zap.String("error", err.Error()))
	}
	p.log.Info("online store rebuilt", zap.String("view", v.Name), zap.Int("events", rep.Events), zap.Int("entities", rep.Entities),
		zap.Time("cut", rep.Cut), zap.Duration("elapsed", time.Since(detected)))
	return nil
}

func (p *Processor) newEpoch(ctx context.Context, v *views.View) error {
	var b [12]byte
	_, _ = rand.Read(b[:])
	epoch := hex.EncodeToString(b[:])
	if err := p.store.SetEpoch(ctx, v, epoch); err != nil {
		return err
	}
	p.setEpoch(v.Name, epoch)
	return nil
}

// everComputed reports whether the offline store holds updates of the view version.
func (p *Processor) everComputed(ctx context.Context, v *views.View) (bool, error) {
	var n uint64
	err := p.conn.QueryRow(ctx, "SELECT count() FROM (SELECT 1 FROM feature_updates WHERE view = ? AND view_version = ? LIMIT 1)", v.Name, v.Version).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look for offline updates of %s: %w", v.Name, err)
	}
	return n > 0, nil
}

func (p *Processor) setRebuilding(view string, on bool) {
	p.mu.Lock()
	p.rebuilding[view] = on
	p.mu.Unlock()
	g := 0.0
	if on {
		g = 1
	}
	p.m.rebuilding.WithLabelValues(view).Set(g)
}

func (p *Processor) recordRebuild(ctx context.Context, v *views.View, reason string, detected time.Time, rep BackfillReport) error {
	batch, err := p.conn.PrepareBatch(ctx, "INSERT INTO feature_rebuilds (view, view_version, detected_at, reason, events, entities, cut_ms, elapsed_ms)")
	if err != nil {
		return err
	}
	if err := batch.Append(v.Name, v.Version, detected.UTC().Truncate(time.Second), reason, uint64(rep.Events), uint64(rep.Entities),
		rep.Cut.UnixMilli(), uint64(time.Since(detected).Milliseconds())); err != nil {
		_ = batch.Abort()
		return err
	}
	return batch.Send()
}

// handleLoss rebuilds the view a batch found behind, so the batch can be applied again.
func (p *Processor) handleLoss(ctx context.Context, err error) (bool, error) {
	var behind *errStoreBehind
	if !errors.As(err, &behind) {
		return false, err
	}
	p.ensureMu.Lock()
	defer p.ensureMu.Unlock()
	v, _ := p.catalog.Get(behind.view)
	if rerr := p.rebuild(ctx, v, behind.Error()); rerr != nil {
		return false, rerr
	}
	return true, nil
}
