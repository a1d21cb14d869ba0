package stream

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/offline"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// BackfillReport says what a backfill rebuilt.
type BackfillReport struct {
	View     string        `json:"view"`
	Version  string        `json:"version"`
	From     time.Time     `json:"from"`
	Cut      time.Time     `json:"cut"`
	Events   int           `json:"events"`
	Updates  int           `json:"updates"`
	Late     int           `json:"late_dropped"`
	Entities int           `json:"entities"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

// Backfill rebuilds a view's online and offline state from the ClickHouse event log — after
// losing Redis, or for a new view. It holds the view's lock, so live application pauses (the
// consumer waits; nothing is lost). The rebuild takes every logged event of the source stream
// ingested up to the cut — the newest ingestion time live processing has applied (or now −
// 10 s) — within the view's TTL, in event-time order; afterwards live processing skips events
// ingested up to the cut and applies everything newer, so each event counts exactly once.
// The event log must hold every event ingested up to the cut; the backfill waits for it to
// reach the cut (up to maxWait) when events are flowing.
func (p *Processor) Backfill(ctx context.Context, view string, maxWait time.Duration) (BackfillReport, error) {
	return p.backfill(ctx, view, maxWait, false)
}

// backfill is Backfill; lost also drops the view's stored offsets with its states, under the
// same lock, so no live batch commits in between.
func (p *Processor) backfill(ctx context.Context, view string, maxWait time.Duration, lost bool) (BackfillReport, error) {
	v, ok := p.catalog.Get(view)
	if !ok {
		return BackfillReport{}, fmt.Errorf("no feature view %q", view)
	}
	start := time.Now()
	p.locks[view].Lock()
	defer p.locks[view].Unlock()

	p.mu.Lock()
	cut := p.maxIngested[view]
	p.mu.Unlock()
	if cut == 0 {
		var err error
		if cut, err = p.appliedBefore(ctx, v); err != nil {
			return BackfillReport{}, err
		}
	}
	if cut == 0 {
		cut = time.Now().Add(-10 * time.Second).UnixMilli()
	}
	rep := BackfillReport{View: view, Version: v.Version, Cut: time.UnixMilli(cut).UTC()}
	deadline := time.Now().Add(maxWait)
	for {
		var newest int64
		if err := p.conn.QueryRow(ctx, "SELECT max(ingested_at_ms) FROM events WHERE stream = ?", v.Source).Scan(&newest); err != nil {
			return rep, fmt.Errorf("read the event log's progress: %w", err)
		}
		if newest >= cut || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	if err := p.conn.Exec(ctx, "ALTER TABLE feature_updates DELETE WHERE view = ? AND view_version = ?", v.Name, v.Version); err != nil {
		return rep, fmt.Errorf("delete offline updates of %s: %w", view, err)
	}
	if err := waitMutations(ctx, p); err != nil {
		return rep, err
	}
	if _, err := p.store.DropStates(ctx, v); err != nil {
		return rep, fmt.Errorf("drop online states of %s: %w", view, err)
	}
	if lost {
		if err := p.store.DropOffsets(ctx, v); err != nil {
			return rep, err
		}
	}
	p.mu.Lock()
	clear(p.parts[view])
	p.mu.Unlock()

	e := p.engines[view]
	x := p.extract[view]
	from := time.UnixMilli(cut).Add(-time.Duration(v.TTL) - time.Duration(v.Lateness))
	rep.From = from.UTC()
	rows, err := p.conn.Query(ctx, `SELECT event_id, event_time_ms, payload FROM events
		WHERE stream = ? AND event_time >= ? AND ingested_at_ms <= ?
		ORDER BY event_time_ms, event_id`, v.Source, from.UTC(), cut)
	if err != nil {
		return rep, fmt.Errorf("read the event log: %w", err)
	}
	defer rows.Close()
	states := map[string]*agg.State{}
	var updates []offline.Update
	lastID := ""
	for rows.Next() {
		var id, payload string
		var ts int64
		if err := rows.Scan(&id, &ts, &payload); err != nil {
			return rep, err
		}
		if id == lastID { // a replay not merged yet in the log
			continue
		}
		lastID = id
		rep.Events++
		entity, vals, err := x.Extract([]byte(payload))
		if err != nil {
			continue
		}
		st := states[entity]
		if st == nil {
			st = e.NewState()
			states[entity] = st
		}
		ev := agg.Event{Time: ts, Vals: vals}
		seq := st.NextSeq
		if !e.Apply(st, ev) {
			rep.Late++
			continue
		}
		ev.Seq = seq
		updates = append(updates, offline.Update{Entity: entity, EventID: id, Event: ev})
		if len(updates) == 50_000 {
			if err := offline.Write(ctx, p.conn, v, updates); err != nil {
				return rep, err
			}
			rep.Updates += len(updates)
			updates = updates[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("read the event log: %w", err)
	}
	if err := offline.Write(ctx, p.conn, v, updates); err != nil {
		return rep, err
	}
	rep.Updates += len(updates)

	entities := make([]string, 0, 1000)
	blobs := make([][]byte, 0, 1000)
	for entity, st := range states {
		entities = append(entities, entity)
		blobs = append(blobs, e.Encode(nil, st))
		if len(entities) == 1000 {
			if err := p.store.PutStates(ctx, v, entities, blobs); err != nil {
				return rep, fmt.Errorf("write online states of %s: %w", view, err)
			}
			entities, blobs = entities[:0], blobs[:0]
		}
	}
	if err := p.store.PutStates(ctx, v, entities, blobs); err != nil {
		return rep, fmt.Errorf("write online states of %s: %w", view, err)
	}
	if err := p.store.SetCut(ctx, v, cut); err != nil {
		return rep, err
	}
	p.mu.Lock()
	p.cuts[view] = cut
	// The state now holds everything ingested up to the cut: a later backfill by this process
	// must not cut lower.
	p.maxIngested[view] = max(p.maxIngested[view], cut)
	p.mu.Unlock()
	rep.Entities = len(states)
	rep.Elapsed = time.Since(start)
	p.log.Info("backfill done", zap.String("view", view), zap.Int("events", rep.Events), zap.Int("entities", rep.Entities),
		zap.Duration("elapsed", rep.Elapsed))
	return rep, nil
}

// appliedBefore is the newest ingestion time of an event an earlier process applied to the
// view (0 when it cannot tell): a process that applied nothing yet has no cut of its own, and
// "now − 10 s" would leave out what an earlier process applied in its last seconds — events
// the consumer group has committed and will not deliver again. Every applied event has an
// offline update written after its ingestion, so the newest ones are among the updates of the
// last minute of writes whose events were ingested in that minute; an event ingested before
// that minute is older than any of them. Both sides of the join are bounded by a minute of
// traffic.
func (p *Processor) appliedBefore(ctx context.Context, v *views.View) (int64, error) {
	var newest time.Time
	if err := p.conn.QueryRow(ctx, "SELECT max(written_at) FROM feature_updates WHERE view = ? AND view_version = ?",
		v.Name, v.Version).Scan(&newest); err != nil {
		return 0, fmt.Errorf("read the newest offline update of %s: %w", v.Name, err)
	}
	if newest.Unix() <= 0 {
		return 0, nil
	}
	from := newest.Add(-time.Minute)
	var ingested int64
	err := p.conn.QueryRow(ctx, `SELECT max(ingested_at_ms) FROM (
			SELECT event_id FROM feature_updates WHERE view = ? AND view_version = ? AND written_at >= ?
		) ANY INNER JOIN (
			SELECT event_id, ingested_at_ms FROM events WHERE stream = ? AND ingested_at_ms >= ? AND ingested_at_ms <= ?
		) USING event_id`, v.Name, v.Version, from.UTC(), v.Source, from.UnixMilli(), newest.Add(time.Second).UnixMilli()).Scan(&ingested)
	if err != nil {
		return 0, fmt.Errorf("read what was applied to %s before: %w", v.Name, err)
	}
	return ingested, nil
}

// waitMutations waits until ClickHouse has finished the mutations of feature_updates
// (ALTER ... DELETE runs asynchronously; 18.16 has no mutations_sync).
func waitMutations(ctx context.Context, p *Processor) error {
	for {
		var pending uint64
		err := p.conn.QueryRow(ctx, `SELECT count() FROM system.mutations
			WHERE database = currentDatabase() AND table = 'feature_updates' AND is_done = 0`).Scan(&pending)
		if err != nil {
			return fmt.Errorf("wait for the offline delete: %w", err)
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
