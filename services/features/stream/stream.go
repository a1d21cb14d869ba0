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
	applied, late, skipped, bad *prometheus.CounterVec
	lastEvent                   *prometheus.GaugeVec
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
		}}
	for _, c := range []prometheus.Collector{p.m.applied, p.m.late, p.m.skipped, p.m.bad, p.m.lastEvent} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
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

// Handle is the kafkax handler.
// Handle is the kafkax handler. Each view's partitions are applied concurrently: their
// entities are disjoint, and each has its own offsets, states and commit.
func (p *Processor) Handle(ctx context.Context, batch []kafka.Message) error {
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
		g, gctx := errgroup.WithContext(ctx)
		for _, part := range order {
			if stream, _ := schemas.StreamOf(part.Topic); stream != v.Source {
				continue
			}
			g.Go(func() error {
				for attempt := 0; ; attempt++ {
					err := p.applyPartition(gctx, v, part, batch, envelopes, byPart[part])
					if err == nil || !errors.Is(err, online.ErrOffsetMoved) || attempt >= 3 {
						return err
					}
					// reload: the other writer's states and offsets decide what is left
				}
			})
		}
		if err := g.Wait(); err != nil {
			return kafkax.Transient(err)
		}
	}
	return nil
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

func (p *Processor) applyPartition(ctx context.Context, v *views.View, part online.Partition,
	batch []kafka.Message, envelopes []schemas.Event, idx []int) error {
	p.locks[v.Name].RLock()
	defer p.locks[v.Name].RUnlock()
	// Read the cut under the lock: a backfill that just finished may have moved it.
	cut, err := p.cut(ctx, v)
	if err != nil {
		return err
	}
	parts := []online.Partition{part}
	offsets, err := p.store.Offsets(ctx, v, parts)
	if err != nil {
		return err
	}
	applied := offsets[0]
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
		return err
	}
	loaded := make(map[string][]byte, len(missing))
	for i, entity := range missing {
		loaded[entity] = blobs[i]
	}
	var updates []offline.Update
	late := 0
	newBlobs := make([][]byte, len(order))
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
		newBlobs[i] = e.Encode(nil, st)
	}
	// Offline first: if the Redis commit then fails, the batch is redone with the same
	// sequence numbers and the offline rows collapse; the reverse order could lose them.
	forget := func() {
		for _, entity := range order {
			delete(ps.cache, entity)
		}
		ps.valid = false
	}
	if err := offline.Write(ctx, p.conn, v, updates); err != nil {
		forget()
		return err
	}
	if err := p.store.Commit(ctx, v, parts, []int64{applied}, []int64{next}, order, newBlobs); err != nil {
		forget()
		return err
	}
	if len(ps.cache)+len(order) > maxCachedStates {
		clear(ps.cache)
	}
	for i, entity := range order {
		ps.cache[entity] = states[i]
	}
	ps.committed, ps.valid = next, true
	p.m.applied.WithLabelValues(v.Name).Add(float64(len(updates)))
	p.stats.Add([]string{v.Name}, []uint64{uint64(len(updates)), uint64(late), 0, 0, 0}, []int64{newest})
	if newest > 0 {
		p.m.lastEvent.WithLabelValues(v.Name).Set(float64(newest) / 1000)
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
