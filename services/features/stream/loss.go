package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// storeBehind reports whether a partition's first delivered offset is past the offset stored
// with the states plus one: the consumer group committed past what the store holds, so Redis
// lost writes. No stored offset (-1) says nothing: a first start, or offsets dropped by a
// rebuild, whose cut then decides which events are new.
func storeBehind(applied, first int64) bool { return applied >= 0 && first > applied+1 }

// KnownEpoch is the epoch of the online state this process built on or adopted ("" before
// the first check). Lookups compare it with the epoch Redis holds.
func (p *Processor) KnownEpoch(view string) string { return p.guard.known(view) }

// Rebuilding reports whether view's online state is being rebuilt (lookups must not trust it).
func (p *Processor) Rebuilding(view string) bool { return p.guard.isRebuilding(view) }

// OnlineCheck is a readiness probe for a consuming process: it fails before the first epoch
// check and while a view is rebuilt.
func (p *Processor) OnlineCheck(context.Context) error { return p.guard.ready() }

// Watch checks the epochs every WatchInterval until ctx ends, rebuilding lost views. Between
// batches this is what notices a flush of an idle view; lookups notice it at once (they read
// the epoch with the states) and answer 503 until the watch or the next batch repairs it.
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
	names := p.catalog.Names()
	vs := make([]*views.View, len(names))
	for i, n := range names {
		vs[i], _ = p.catalog.Get(n)
	}
	return p.guard.check(ctx, vs)
}

// handleLoss rebuilds the view a batch found behind, so the batch can be applied again.
func (p *Processor) handleLoss(ctx context.Context, err error) (bool, error) {
	var behind *errStoreBehind
	if !errors.As(err, &behind) {
		return false, err
	}
	v, _ := p.catalog.Get(behind.view)
	if rerr := p.guard.rebuildNow(ctx, v, behind.Error()); rerr != nil {
		return false, rerr
	}
	return true, nil
}

// The processor is the guard's repairer.

func (p *Processor) computed(ctx context.Context, v *views.View) (bool, error) {
	var n uint64
	err := p.conn.QueryRow(ctx, "SELECT count() FROM (SELECT 1 FROM feature_updates WHERE view = ? AND view_version = ? LIMIT 1)", v.Name, v.Version).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look for offline updates of %s: %w", v.Name, err)
	}
	return n > 0, nil
}

// repair backfills v, dropping its stored offsets under the backfill's lock: offsets that
// survived a partial loss are behind and would flag the store again; the cut now decides
// which delivered events are new.
func (p *Processor) repair(ctx context.Context, v *views.View) (BackfillReport, error) {
	return p.backfill(ctx, v.Name, rebuildWait, true)
}

func (p *Processor) forget(view string) {
	p.mu.Lock()
	clear(p.parts[view])
	delete(p.cuts, view)
	p.mu.Unlock()
}

func (p *Processor) record(ctx context.Context, v *views.View, reason string, detected time.Time, rep BackfillReport) error {
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
