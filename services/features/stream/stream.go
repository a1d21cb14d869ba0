// Package stream is the one computation: it consumes events.<stream>, folds each event into
// the state of every view fed by the stream, writes the applied updates to the offline store,
// then commits the new states together with the partition offsets to Redis — so a redelivered
// batch is skipped, never double counted, and online and offline hold the same updates.
package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/go-json-experiment/json"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/extract"
	"github.com/flywheel-ml/flywheel/services/features/offline"
	"github.com/flywheel-ml/flywheel/services/features/online"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// Processor applies event batches to the views of a catalog.
type Processor struct {
	// Per view: a lock a backfill takes (exclusively) to stop live application; partitions
	// apply concurrently under its read side.
	locks map[string]*sync.RWMutex
	mu    sync.Mutex // guards the maps below (not the partState contents)
	// Per view and partition: decoded states this process committed last (see partState).
	parts map[string]map[online.Partition]*partState
	// Per view: the newest ingestion time applied, and the backfill cut below which live
	// events are already in the state (absent until read from Redis).
	maxIngested map[string]int64
	cuts        map[string]int64
	guard       *guard // online-store loss detection and repair (guard.go, loss.go)
	catalog     *views.Catalog
	engines     map[string]*agg.Engine
	extract     map[string]*extract.Extractor
	store       *online.Store
	conn        driver.Conn
	stats       *chx.Rollup
	log         *zap.Logger
	m           metrics
}

// NewStats returns the rollup of the feature_stats table that the processor and the lookup API
// add to: per view, sums of updates, late_dropped, lookups, lookup_values and
// lookup_defaults, and the maximum newest_event_ms.
func NewStats(conn driver.Conn, interval time.Duration, log *zap.Logger) *chx.Rollup {
	return chx.NewRollup(conn, "feature_stats", []string{"view"},
		[]string{"updates", "late_dropped", "lookups", "lookup_values", "lookup_defaults"}, []string{"newest_event_ms"}, interval, log)
}

type metrics struct {
	applied, late, skipped, bad, rebuilds *prometheus.CounterVec
	lastEvent, rebuilding                 *prometheus.GaugeVec
}

// New returns a processor.
func New(cat *views.Catalog, store *online.Store, conn driver.Conn, stats *chx.Rollup, reg prometheus.Registerer, log *zap.Logger) (*Processor, error) {
	p := &Processor{catalog: cat, engines: map[string]*agg.Engine{}, extract: map[string]*extract.Extractor{},
		locks: map[string]*sync.RWMutex{}, maxIngested: map[string]int64{}, cuts: map[string]int64{},
		parts: map[string]map[online.Partition]*partState{},
		store: store, conn: conn, stats: stats, log: log.Named("stream"),
		m: metrics{
			applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flywheel_features_updates_total",
				Help: "Events applied to a view."}, []string{"view"}),
			late: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flywheel_features_late_dropped_total",
				Help: "Events dropped for arriving later than the view's lateness."}, []string{"view"}),
			skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flywheel_features_redelivered_skipped_total",
				Help: "Redelivered events skipped because their offset was already applied."}, []string{"view"}),
			bad: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flywheel_features_unusable_events_total",
				Help: "Events without the view's join keys or with undecodable data."}, []string{"view"}),
			lastEvent: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flywheel_features_last_event_time_seconds",
				Help: "Event time of the newest applied event (freshness = now - this)."}, []string{"view"}),
			rebuilds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flywheel_features_online_rebuilds_total",
				Help: "Rebuilds of a view's online state from the event log after the online store lost it."}, []string{"view"}),
			rebuilding: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flywheel_features_online_rebuilding",
				Help: "1 while a view's online state is being rebuilt (its lookups answer 503)."}, []string{"view"}),
		}}
	for _, c := range []prometheus.Collector{p.m.applied, p.m.late, p.m.skipped, p.m.bad, p.m.lastEvent, p.m.rebuilds, p.m.rebuilding} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	p.guard = newGuard(store, p, p.m.rebuilds, p.m.rebuilding, p.log)
	for _, n := range cat.Names() {
		v, _ := cat.Get(n)
		p.engines[n] = agg.NewEngine(v)
		p.extract[n] = extract.New(v)
		p.locks[n] = &sync.RWMutex{}
		p.parts[n] = map[online.Partition]*partState{}
	}
	return p, nil
}

// Topics lists the events.<stream> topics the catalog needs.
func (p *Processor) Topics() []string {
	var out []string
	for _, s := range p.catalog.Sources() {
		out = append(out, schemas.EventsTopic(s))
	}
	return out
}

// Handle is the kafkax handler. Each view's partitions are applied concurrently: their
// entities are disjoint, and each has its own offsets, states and commit.
func (p *Processor) Handle(ctx context.Context, batch []kafka.Message) error {
	if err := p.EnsureOnline(ctx); err != nil {
		return kafkax.Transient(err)
	}
	envelopes := make([]schemas.Event, len(batch))
	byPart := map[online.Partition][]int{}
	var order []online.Partition
	for i, m := range batch {
		if err := json.Unmarshal(m.Value, &envelopes[i]); err != nil {
			return fmt.Errorf("decode envelope at %s/%d/%d: %w", m.Topic, m.Partition, m.Offset, err)
		}
		part := online.Partition{Topic: m.Topic, Partition: m.Partition}
		if _, ok := byPart[part]; !ok {
			order = append(order, part)
		}
		byPart[part] = append(byPart[part], i)
	}
	for _, name := range p.catalog.Names() {
		v, _ := p.catalog.Get(name)
		var parts []online.Partition
		for _, part := range order {
			if stream, _ := schemas.StreamOf(part.Topic); stream == v.Source {
				parts = append(parts, part)
			}
		}
		if len(parts) == 0 {
			continue
		}
		err := p.applyView(ctx, v, parts, batch, envelopes, byPart)
		if rebuilt, lerr := p.handleLoss(ctx, err); rebuilt {
			err = p.applyView(ctx, v, parts, batch, envelopes, byPart)
		} else {
			err = lerr
		}
		if err != nil {
			return kafkax.Transient(err)
		}
	}
	return nil
}

// applyView applies a batch's partitions of one view: each partition's states are folded
// concurrently, all their updates go to the offline store in one insert (fewer, larger
// ClickHouse parts), then each partition commits its states with its offsets. A partition
// whose stored offset moved (another writer) is prepared again from what Redis holds.
func (p *Processor) applyView(ctx context.Context, v *views.View, parts []online.Partition,
	batch []kafka.Message, envelopes []schemas.Event, byPart map[online.Partition][]int) error {
	p.locks[v.Name].RLock()
	defer p.locks[v.Name].RUnlock()
	for attempt := 0; ; attempt++ {
		prepared := make([]*prepared, len(parts))
		g, gctx := errgroup.WithContext(ctx)
		for i, part := range parts {
			g.Go(func() (err error) {
				prepared[i], err = p.preparePartition(gctx, v, part, batch, envelopes, byPart[part])
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		var updates []offline.Update
		for _, pr := range prepared {
			updates = append(updates, pr.updates...)
		}
		// Offline first: if a Redis commit then fails, the batch is redone with the same
		// sequence numbers and the offline rows collapse; the reverse order could lose them.
		if err := offline.Write(ctx, p.conn, v, updates); err != nil {
			for _, pr := range prepared {
				pr.forget()
			}
			return err
		}
		var retry []online.Partition
		var mu sync.Mutex
		g, gctx = errgroup.WithContext(ctx)
		for i, pr := range prepared {
			g.Go(func() error {
				err := p.commitPartition(gctx, v, pr)
				if errors.Is(err, online.ErrOffsetMoved) && attempt < 3 {
					mu.Lock()
					retry = append(retry, parts[i])
					mu.Unlock()
					return nil
				}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		if len(retry) == 0 {
			return nil
		}
		parts = retry // reload: the other writer's states and offsets decide what is left
	}
}

// cut returns the view's backfill cut, reading it from Redis the first time.
func (p *Processor) cut(ctx context.Context, v *views.View) (int64, error) {
	p.mu.Lock()
	cut, loaded := p.cuts[v.Name]
	p.mu.Unlock()
	if loaded {
		return cut, nil
	}
	cut, err := p.store.Cut(ctx, v)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	p.cuts[v.Name] = cut
	p.mu.Unlock()
	return cut, nil
}

// partState is one partition's decoded-state cache for one view, used by one goroutine at a
// time. Its entries are trusted only while the partition's stored offset is still the one
// this process committed.
type partState struct {
	cache     map[string]*agg.State
	committed int64
	valid     bool
	arenaHint int // bytes the last batch's encoded states took
}

func (p *Processor) partState(view string, part online.Partition) *partState {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.parts[view][part]
	if ps == nil {
		ps = &partState{cache: map[string]*agg.State{}}
		p.parts[view][part] = ps
	}
	return ps
}

// prepared is one partition's batch folded into its states, ready to commit.
type prepared struct {
	part          online.Partition
	ps            *partState
	applied, next int64
	order         []string
	states        []*agg.State
	blobs         [][]byte
	updates       []offline.Update
	late          int
	newest        int64
}

// forget drops the partition's states that this batch changed in place from the cache: they
// are read back from Redis next time.
func (pr *prepared) forget() {
	for _, entity := range pr.order {
		delete(pr.ps.cache, entity)
	}
	pr.ps.valid = false
}

// preparePartition folds a partition's events of the batch into its entities' states. The
// caller holds the view's read lock, under which the backfill cut is read: a backfill that
// just finished may have moved it.
func (p *Processor) preparePartition(ctx context.Context, v *views.View, part online.Partition,
	batch []kafka.Message, envelopes []schemas.Event, idx []int) (*prepared, error) {
	cut, err := p.cut(ctx, v)
	if err != nil {
		return nil, err
	}
	parts := []online.Partition{part}
	offsets, err := p.store.Offsets(ctx, v, parts)
	if err != nil {
		return nil, err
	}
	applied := offsets[0]
	if first := batch[idx[0]].Offset; storeBehind(applied, first) {
		return nil, &errStoreBehind{view: v.Name, applied: applied, first: first, topic: part.Topic, partition: part.Partition}
	}
	ps := p.partState(v.Name, part)
	if ps.valid && ps.committed != applied {
		// Someone else wrote this partition since we did: forget its cached states.
		clear(ps.cache)
		ps.valid = false
	}
	next := applied

	byEntity := map[string]*entityBatch{}
	var order []string
	var maxIngested int64
	x := p.extract[v.Name]
	for _, i := range idx {
		m := batch[i]
		if m.Offset <= applied {
			p.m.skipped.WithLabelValues(v.Name).Inc()
			continue
		}
		next = max(next, m.Offset)
		ingested := envelopes[i].IngestedAt.UnixMilli()
		if ingested <= cut {
			continue // a backfill already put it in the state
		}
		maxIngested = max(maxIngested, ingested)
		entity, vals, err := x.Extract(envelopes[i].Data)
		if err != nil {
			p.m.bad.WithLabelValues(v.Name).Inc()
			continue
		}
		eb := byEntity[entity]
		if eb == nil {
			eb = &entityBatch{}
			byEntity[entity] = eb
			order = append(order, entity)
		}
		eb.events = append(eb.events, agg.Event{Time: envelopes[i].EventTime.UnixMilli(), Vals: vals})
		eb.ids = append(eb.ids, envelopes[i].EventID)
	}
	p.mu.Lock()
	p.maxIngested[v.Name] = max(p.maxIngested[v.Name], maxIngested)
	p.mu.Unlock()

	e := p.engines[v.Name]
	var missing []string
	for _, entity := range order {
		if _, ok := ps.cache[entity]; !ok {
			missing = append(missing, entity)
		}
	}
	blobs, err := p.store.States(ctx, v, missing)
	if err != nil {
		return nil, err
	}
	loaded := make(map[string][]byte, len(missing))
	for i, entity := range missing {
		loaded[entity] = blobs[i]
	}
	var updates []offline.Update
	late := 0
	newBlobs := make([][]byte, len(order))
	// Sized from the last batch of this partition, so the shared buffer rarely grows.
	arena := make([]byte, 0, ps.arenaHint)
	states := make([]*agg.State, len(order))
	var newest int64
	for i, entity := range order {
		st := ps.cache[entity]
		if st == nil {
			st = e.NewState()
			if blob := loaded[entity]; blob != nil {
				if st, err = e.Decode(blob); err != nil {
					// A state that does not decode is rebuilt from scratch rather than blocking
					// the partition; backfill restores its history.
					p.log.Error("unreadable state; starting it over", zap.String("view", v.Name), zap.String("entity", entity), zap.Error(err))
					st = e.NewState()
				}
			}
		}
		// Cached states are updated in place; if the batch then fails to commit, they are
		// dropped from the cache below and read back from Redis next time.
		states[i] = st
		eb := byEntity[entity]
		for j, ev := range eb.events {
			seq := st.NextSeq
			if !e.Apply(st, ev) {
				p.m.late.WithLabelValues(v.Name).Inc()
				late++
				continue
			}
			ev.Seq = seq
			updates = append(updates, offline.Update{Entity: entity, EventID: eb.ids[j], Event: ev})
			newest = max(newest, ev.Time)
		}
		// All blobs of the batch share one growing buffer: far fewer allocations and copies
		// than a buffer per state.
		start := len(arena)
		arena = e.Encode(arena, st)
		newBlobs[i] = arena[start:len(arena):len(arena)]
	}
	ps.arenaHint = len(arena) + len(arena)/8
	return &prepared{part: part, ps: ps, applied: applied, next: next, order: order, states: states,
		blobs: newBlobs, updates: updates, late: late, newest: newest}, nil
}

// commitPartition writes a prepared partition's states with its offsets, then caches them.
func (p *Processor) commitPartition(ctx context.Context, v *views.View, pr *prepared) error {
	ps := pr.ps
	if err := p.store.Commit(ctx, v, []online.Partition{pr.part}, []int64{pr.applied}, []int64{pr.next}, pr.order, pr.blobs); err != nil {
		pr.forget()
		return err
	}
	if len(ps.cache)+len(pr.order) > maxCachedStates {
		clear(ps.cache)
	}
	for i, entity := range pr.order {
		ps.cache[entity] = pr.states[i]
	}
	ps.committed, ps.valid = pr.next, true
	p.m.applied.WithLabelValues(v.Name).Add(float64(len(pr.updates)))
	p.stats.Add([]string{v.Name}, []uint64{uint64(len(pr.updates)), uint64(pr.late), 0, 0, 0}, []int64{pr.newest})
	if pr.newest > 0 {
		p.m.lastEvent.WithLabelValues(v.Name).Set(float64(pr.newest) / 1000)
	}
	return nil
}

// maxCachedStates bounds the decoded-state cache per view and partition; past it the cache
// starts over.
const maxCachedStates = 100_000

type entityBatch struct {
	events []agg.Event
	ids    []string
}
