package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/services/features/views"
)

// epochStore is what the guard needs of the online store: one epoch key per view version,
// read for all views in one round trip.
type epochStore interface {
	// Epochs returns the stored epoch of each view, "" where there is none.
	Epochs(ctx context.Context, vs []*views.View) ([]string, error)
	SetEpoch(ctx context.Context, v *views.View, epoch string) error
	// SwapEpoch sets the epoch to next only if it still is prev, atomically.
	SwapEpoch(ctx context.Context, v *views.View, prev, next string) (bool, error)
}

// repairer is what the guard needs of the processor. The guard serialises its calls.
type repairer interface {
	// computed reports whether the view version was computed before (the offline store holds
	// its updates): a store without its epoch then lost its state rather than never had it.
	computed(ctx context.Context, v *views.View) (bool, error)
	// repair rebuilds the view's online state from the event log, pausing live application.
	repair(ctx context.Context, v *views.View) (BackfillReport, error)
	// forget drops what this process cached of the view's state: another process rebuilt it.
	forget(view string)
	// record keeps a finished rebuild where operators look (ClickHouse feature_rebuilds).
	record(ctx context.Context, v *views.View, reason string, detected time.Time, rep BackfillReport) error
}

// guard decides, per view, whether the online store still holds the state this process
// built on, and repairs the views whose state it lost. Checks and repairs run one at a time
// (the processor's batches and its idle watch both call it); lookups and readiness probes
// read its verdicts concurrently.
type guard struct {
	store    epochStore
	repairer repairer
	newEpoch func() string
	log      *zap.Logger
	rebuilds *prometheus.CounterVec
	gauge    *prometheus.GaugeVec

	run sync.Mutex // held for a whole check or repair

	mu         sync.Mutex // guards the fields below
	checked    bool       // a first check completed
	epochs     map[string]string
	rebuilding map[string]string // view → why, while its state must not be served
}

func newGuard(store epochStore, r repairer, rebuilds *prometheus.CounterVec, gauge *prometheus.GaugeVec, log *zap.Logger) *guard {
	return &guard{store: store, repairer: r, newEpoch: randomEpoch, log: log, rebuilds: rebuilds, gauge: gauge,
		epochs: map[string]string{}, rebuilding: map[string]string{}}
}

func randomEpoch() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// known is the epoch of the state this process built on or adopted ("" before the first
// check).
func (g *guard) known(view string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.epochs[view]
}

// isRebuilding reports whether the view's state is being rebuilt (or a rebuild failed and
// will be retried): its lookups must not be answered from the store.
func (g *guard) isRebuilding(view string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, on := g.rebuilding[view]
	return on
}

// ready is the readiness probe: not ready before the first check (the store might be one that
// lost its state while the service was down) nor while a view is rebuilt.
func (g *guard) ready() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.checked {
		return errors.New("the online store's epochs have not been checked yet")
	}
	for view := range g.rebuilding {
		return fmt.Errorf("online store of %s is being rebuilt from the event log", view)
	}
	return nil
}

// check compares every view's stored epoch with the one this process knows and repairs the
// views whose state was lost. The first check adopts the epochs it finds, writes one for a
// view never computed, and repairs a computed view whose epoch is missing (lost while the
// service was down).
func (g *guard) check(ctx context.Context, vs []*views.View) error {
	g.run.Lock()
	defer g.run.Unlock()
	stored, err := g.store.Epochs(ctx, vs)
	if err != nil {
		return err
	}
	for i, v := range vs {
		if err := g.checkView(ctx, v, stored[i]); err != nil {
			return err
		}
	}
	g.mu.Lock()
	g.checked = true
	g.mu.Unlock()
	return nil
}

func (g *guard) checkView(ctx context.Context, v *views.View, stored string) error {
	known := g.known(v.Name)
	switch {
	case g.isRebuilding(v.Name):
		// An earlier attempt failed part way: its epoch may be stored, its states are not.
		return g.rebuild(ctx, v, "retrying a rebuild that failed")
	case stored == "" && known == "":
		computed, err := g.repairer.computed(ctx, v)
		if err != nil {
			return err
		}
		if !computed {
			// A first start: nothing to rebuild, the view's history begins now.
			return g.writeEpoch(ctx, v, g.newEpoch())
		}
		return g.rebuild(ctx, v, "the online store holds no state of a view computed before: it was lost while the service was down")
	case stored == "":
		return g.rebuild(ctx, v, "the view's epoch key disappeared: the online store was lost or flushed")
	case known == "" && strings.HasPrefix(stored, pendingEpoch):
		return g.rebuild(ctx, v, "a rebuild of the view was interrupted: the online store holds part of its state")
	case known == "":
		g.setKnown(v.Name, stored) // first look: the state this process starts on
	case stored != known:
		// Another process rebuilt the view: its states replaced the ones cached here.
		g.log.Info("online store rebuilt elsewhere; dropping cached states", zap.String("view", v.Name))
		g.repairer.forget(v.Name)
		g.setKnown(v.Name, stored)
	}
	return nil
}

// rebuildNow repairs v for a reason found outside a check (a batch found its stored offsets
// behind the consumer group).
func (g *guard) rebuildNow(ctx context.Context, v *views.View, reason string) error {
	g.run.Lock()
	defer g.run.Unlock()
	return g.rebuild(ctx, v, reason)
}

// pendingEpoch starts the epoch written while a rebuild runs: a process that starts on it
// knows the rebuild was interrupted.
const pendingEpoch = "rebuilding-"

// rebuild repairs v under a new epoch. The caller holds run. A pending epoch is written
// before the repair, so a loss during the repair removes it and the next check repairs again,
// and a crash during the repair leaves it for the next process to see; the view stays marked
// (lookups answer 503) until a repair succeeds.
func (g *guard) rebuild(ctx context.Context, v *views.View, reason string) error {
	detected := time.Now()
	g.mu.Lock()
	_, again := g.rebuilding[v.Name]
	g.rebuilding[v.Name] = reason
	g.mu.Unlock()
	if !again {
		g.log.Warn("online store lost; rebuilding the view from the event log", zap.String("view", v.Name), zap.String("reason", reason))
		g.rebuilds.WithLabelValues(v.Name).Inc()
		g.gauge.WithLabelValues(v.Name).Set(1)
	}
	epoch := g.newEpoch()
	if err := g.writeEpoch(ctx, v, pendingEpoch+epoch); err != nil {
		return err
	}
	rep, err := g.repairer.repair(ctx, v)
	if err != nil {
		return fmt.Errorf("rebuild %s after online store loss: %w", v.Name, err)
	}
	// Only if the pending epoch survived: a store lost during the repair must not get an epoch
	// that vouches for it.
	swapped, err := g.store.SwapEpoch(ctx, v, pendingEpoch+epoch, epoch)
	if err != nil {
		return err
	}
	if !swapped {
		return fmt.Errorf("rebuild %s: the online store was lost again during the rebuild", v.Name)
	}
	g.setKnown(v.Name, epoch)
	if err := g.repairer.record(ctx, v, reason, detected, rep); err != nil {
		g.log.Warn("rebuild not recorded in feature_rebuilds", zap.String("view", v.Name), zap.Error(err))
	}
	g.mu.Lock()
	delete(g.rebuilding, v.Name)
	g.mu.Unlock()
	g.gauge.WithLabelValues(v.Name).Set(0)
	g.log.Info("online store rebuilt", zap.String("view", v.Name), zap.String("reason", reason), zap.Int("events", rep.Events),
		zap.Int("entities", rep.Entities), zap.Time("cut", rep.Cut), zap.Duration("elapsed", time.Since(detected)))
	return nil
}

func (g *guard) writeEpoch(ctx context.Context, v *views.View, epoch string) error {
	if err := g.store.SetEpoch(ctx, v, epoch); err != nil {
		return err
	}
	g.setKnown(v.Name, epoch)
	return nil
}

func (g *guard) setKnown(view, epoch string) {
	g.mu.Lock()
	g.epochs[view] = epoch
	g.mu.Unlock()
}
