// Package offline is the ClickHouse offline store: it records every applied update
// (feature_updates) and answers point-in-time queries by replaying them through the same
// aggregation code as the online store, so training data has exactly the values serving saw.
package offline

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// Update is one applied event of one entity of one view.
type Update struct {
	Entity  string
	EventID string
	Event   agg.Event
}

var columns = []string{"view", "view_version", "entity", "seq", "event_id", "event_time", "event_time_ms", "kinds", "nums", "strs", "written_at"}

// Write records updates of view v. Replays of the same (entity, seq) collapse.
func Write(ctx context.Context, conn driver.Conn, v *views.View, updates []Update) error {
	if len(updates) == 0 {
		return nil
	}
	now := time.Now().UTC()
	rows := make([][]any, len(updates))
	for i, u := range updates {
		kinds := make([]uint8, len(u.Event.Vals))
		nums := make([]float64, len(u.Event.Vals))
		strs := make([]string, len(u.Event.Vals))
		for j, val := range u.Event.Vals {
			kinds[j], nums[j], strs[j] = val.Kind, val.Num, val.Str
		}
		rows[i] = []any{v.Name, v.Version, u.Entity, u.Event.Seq, u.EventID, time.UnixMilli(u.Event.Time).UTC(),
			u.Event.Time, kinds, nums, strs, now}
	}
	if err := chx.Insert(ctx, conn, "feature_updates", columns, rows); err != nil {
		return fmt.Errorf("write %d updates of %s: %w", len(updates), v.Name, err)
	}
	return nil
}

// Row is one entity row of a point-in-time request.
type Row struct {
	Index  int // position in the request
	Entity string
	TS     int64 // Unix milliseconds
}

// Emit receives one row's values, in (entity, ts) order.
type Emit func(row Row, results []agg.Result) error

// Historical computes the view's features for every row as of its timestamp. Rows are
// answered sorted by entity, then time; Row.Index says where each came from.
func Historical(ctx context.Context, conn driver.Conn, e *agg.Engine, rows []Row, emit Emit) error {
	if len(rows) == 0 {
		return nil
	}
	sorted := append([]Row(nil), rows...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		return a.Entity < b.Entity || (a.Entity == b.Entity && a.TS < b.TS)
	})
	minTS, maxTS := sorted[0].TS, sorted[0].TS
	entities := map[string]struct{}{}
	for _, r := range sorted {
		minTS, maxTS = min(minTS, r.TS), max(maxTS, r.TS)
		entities[r.Entity] = struct{}{}
	}
	v := e.View
	from := time.UnixMilli(minTS - time.Duration(v.TTL).Milliseconds() - time.Duration(v.Lateness).Milliseconds())
	query := `SELECT entity, seq, event_time_ms, kinds, nums, strs FROM feature_updates
		WHERE view = ? AND view_version = ? AND event_time >= ? AND event_time_ms <= ?`
	args := []any{v.Name, v.Version, from.UTC(), maxTS}
	if len(entities) <= 1000 {
		// Few entities: let ClickHouse filter. Many: scan the time range and merge in Go,
		// which beats a huge IN list on ClickHouse 18.16.
		query += " AND entity IN ("
		i := 0
		for ent := range entities {
			if i > 0 {
				query += ","
			}
			query += "?"
			args = append(args, ent)
			i++
		}
		query += ")"
	}
	query += " ORDER BY entity, seq"
	dbRows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read updates of %s: %w", v.Name, err)
	}
	defer dbRows.Close()

	results := make([]agg.Result, len(v.Features))
	next := 0 // next row in sorted to answer
	answerUpTo := func(entity string, h *agg.History) error {
		// Rows of entities before this one have no updates at all.
		for next < len(sorted) && sorted[next].Entity < entity {
			e.ReadInto(nil, sorted[next].TS, results)
			if err := emit(sorted[next], results); err != nil {
				return err
			}
			next++
		}
		for next < len(sorted) && sorted[next].Entity == entity {
			h.Read(sorted[next].TS, results)
			if err := emit(sorted[next], results); err != nil {
				return err
			}
			next++
		}
		return nil
	}

	var cur string
	var events []agg.Event
	lastSeq := int64(-1)
	flush := func() error {
		if cur == "" {
			return nil
		}
		if _, wanted := entities[cur]; !wanted {
			return nil
		}
		return answerUpTo(cur, e.NewHistory(events))
	}
	for dbRows.Next() {
		var entity string
		var seq, ts int64
		var kinds []uint8
		var nums []float64
		var strs []string
		if err := dbRows.Scan(&entity, &seq, &ts, &kinds, &nums, &strs); err != nil {
			return fmt.Errorf("scan update: %w", err)
		}
		if entity != cur {
			if err := flush(); err != nil {
				return err
			}
			cur, events, lastSeq = entity, events[:0], -1
		}
		if seq == lastSeq { // a replayed write not merged yet
			continue
		}
		lastSeq = seq
		if _, wanted := entities[entity]; !wanted {
			continue
		}
		vals := make([]agg.Value, len(kinds))
		for i := range kinds {
			vals[i] = agg.Value{Kind: kinds[i], Num: nums[i], Str: strs[i]}
		}
		events = append(events, agg.Event{Time: ts, Seq: seq, Vals: vals})
	}
	if err := dbRows.Err(); err != nil {
		return fmt.Errorf("read updates of %s: %w", v.Name, err)
	}
	if err := flush(); err != nil {
		return err
	}
	for ; next < len(sorted); next++ { // entities without any update
		e.ReadInto(nil, sorted[next].TS, results)
		if err := emit(sorted[next], results); err != nil {
			return err
		}
	}
	return nil
}
