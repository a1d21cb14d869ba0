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
	// cache holds decoded states this process committed last, per view, so a hot entity is
	// not read back and decoded for every batch. An entry is trusted only while its
	// partition's stored offset is still the one this process committed (see applyView).
	cache map[string]map[string]cached
	// Per view: a lock a backfill takes to stop live application, the newest ingestion time
	// applied, and the backfill cut below which live events are already in the state.
	locks       map[string]*sync.Mutex
	maxIngested map[string]int64
	cuts        map[string]int64
	committed   map[string]map[online.Partition]int64
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
		locks: map[string]*sync.Mutex{}, maxIngested: map[string]int64{}, cuts: map[string]int64{},
		cache: map[string]map[string]cached{}, committed: map[string]map[online.Partition]int64{},
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
		p.cache[n] = map[string]cached{}
		p.locks[n] = &sync.Mutex{}
		p.committed[n] = map[online.Partition]int64{}
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
func (p *Processor) Handle(ctx context.Context, batch []kafka.Message) error {
	envelopes := make([]schemas.Event, len(batch))
	for i, m := range batch {
		if err := json.Unmarshal(m.Value, &envelopes[i]); err != nil {
			return fmt.Errorf("decode envelope at %s/%d/%d: %w", m.Topic, m.Partition, m.Offset, err)
		}
	}
	for _, name := range p.catalog.Names() {
		v, _ := p.catalog.Get(name)
		for attempt := 0; ; attempt++ {
			err := p.applyView(ctx, v, batch, envelopes)
			if err == nil {
				break
			}
			if errors.Is(err, online.ErrOffsetMoved) && attempt < 3 {
				continue // reload: the other writer's states and offsets decide what is left
			}
			return kafkax.Transient(err)
		}
	}
	return nil
}

// maxCachedStates bounds the decoded-state cache per view; past it the cache starts over.
const maxCachedStates = 200_000

type cached struct {
	state *agg.State
	part  online.Partition
}

type entityBatch struct {
	part   online.Partition
	events []agg.Event
	ids    []string
}

func (p *Processor) applyView(ctx context.Context, v *views.View, batch []kafka.Message, envelopes []schemas.Event) error {
	p.locks[v.Name].Lock()
	defer p.locks[v.Name].Unlock()
	if _, loaded := p.cuts[v.Name]; !loaded {
		cut, err := p.store.Cut(ctx, v)
		if err != nil {
			return err
		}
		p.cuts[v.Name] = cut
	}
	cut := p.cuts[v.Name]
	// Which partitions does this batch touch, and where do they stand?
	var parts []online.Partition
	index := map[online.Partition]int{}
	for _, m := range batch {
		stream, _ := schemas.StreamOf(m.Topic)
		if stream != v.Source {
			continue
		}
		key := online.Partition{Topic: m.Topic, Partition: m.Partition}
		if _, ok := index[key]; !ok {
			index[key] = len(parts)
			parts = append(parts, key)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	applied, err := p.store.Offsets(ctx, v, parts)
	if err != nil {
		return err
	}
	cache := p.cache[v.Name]
	for i, part := range parts {
		if last, ok := p.committed[v.Name][part]; ok && last != applied[i] {
			// Someone else wrote this partition since we did: forget its cached states.
			for entity, c := range cache {
				if c.part == part {
					delete(cache, entity)
				}
			}
			delete(p.committed[v.Name], part)
		}
	}
	next := append([]int64(nil), applied...)

	byEntity := map[string]*entityBatch{}
	var order []string
	x := p.extract[v.Name]
	for i, m := range batch {
		stream, _ := schemas.StreamOf(m.Topic)
		if stream != v.Source {
			continue
		}
		pi := index[online.Partition{Topic: m.Topic, Partition: m.Partition}]
		if m.Offset <= applied[pi] {
			p.m.skipped.WithLabelValues(v.Name).Inc()
			continue
		}
		next[pi] = max(next[pi], m.Offset)
		ingested := envelopes[i].IngestedAt.UnixMilli()
		if ingested <= cut {
			continue // a backfill already put it in the state
		}
		p.maxIngested[v.Name] = max(p.maxIngested[v.Name], ingested)
		entity, vals, err := x.Extract(envelopes[i].Data)
		if err != nil {
			p.m.bad.WithLabelValues(v.Name).Inc()
			continue
		}
		eb := byEntity[entity]
		if eb == nil {
			eb = &entityBatch{part: online.Partition{Topic: m.Topic, Partition: m.Partition}}
			byEntity[entity] = eb
			order = append(order, entity)
		}
		eb.events = append(eb.events, agg.Event{Time: envelopes[i].EventTime.UnixMilli(), Vals: vals})
		eb.ids = append(eb.ids, envelopes[i].EventID)
	}

	e := p.engines[v.Name]
	var missing []string
	for _, entity := range order {
		if _, ok := cache[entity]; !ok {
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
		st := cache[entity].state
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
			delete(cache, entity)
		}
		for _, part := range parts {
			delete(p.committed[v.Name], part)
		}
	}
	if err := offline.Write(ctx, p.conn, v, updates); err != nil {
		forget()
		return err
	}
	if err := p.store.Commit(ctx, v, parts, applied, next, order, newBlobs); err != nil {
		forget()
		return err
	}
	if len(cache)+len(order) > maxCachedStates {
		clear(cache)
	}
	for i, entity := range order {
		cache[entity] = cached{state: states[i], part: byEntity[entity].part}
	}
	for i, part := range parts {
		p.committed[v.Name][part] = next[i]
	}
	p.m.applied.WithLabelValues(v.Name).Add(float64(len(updates)))
	p.stats.Add([]string{v.Name}, []uint64{uint64(len(updates)), uint64(late), 0, 0, 0}, []int64{newest})
	if newest > 0 {
		p.m.lastEvent.WithLabelValues(v.Name).Set(float64(newest) / 1000)
	}
	return nil
}
