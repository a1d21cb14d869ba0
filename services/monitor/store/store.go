// Package store writes the monitor's results to ClickHouse — drift_metrics,
// model_performance, drift_events — and reads back what the evaluator decides from: recent
// verdicts and the last event (so a restart continues where the last process stopped).
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/monitor/evaluate"
)

// Store is the ClickHouse side of the monitor.
type Store struct {
	conn driver.Conn
	now  func() time.Time
}

// New returns a store.
func New(conn driver.Conn, now func() time.Time) *Store { return &Store{conn: conn, now: now} }

var driftColumns = []string{"model", "version", "kind", "feature", "method", "window_start", "window_end", "n", "score", "threshold", "drifted", "computed_at"}

// WriteScores writes one row per score (a NaN threshold or score is written as 0: ClickHouse
// columns are not nullable here; the verdict says what counts).
func (s *Store) WriteScores(ctx context.Context, w evaluate.Window, scores []evaluate.Score) error {
	rows := make([][]any, 0, len(scores))
	now := s.now().UTC()
	for _, sc := range scores {
		d := uint8(0)
		if sc.Drifted {
			d = 1
		}
		rows = append(rows, []any{w.Model, uint32(w.Version), sc.Kind, sc.Feature, sc.Method, w.Start.UTC(), w.End.UTC(), uint64(w.N),
			finite(sc.Score), finite(sc.Threshold), d, now})
	}
	return chx.Insert(ctx, s.conn, "drift_metrics", driftColumns, rows)
}

// WritePerformance writes the window's quality metrics.
func (s *Store) WritePerformance(ctx context.Context, w evaluate.Window, m map[string]float64) error {
	rows := make([][]any, 0, len(m))
	now := s.now().UTC()
	for k, v := range m {
		rows = append(rows, []any{w.Model, uint32(w.Version), k, w.Start.UTC(), w.End.UTC(), uint64(w.N), v, now})
	}
	return chx.Insert(ctx, s.conn, "model_performance",
		[]string{"model", "version", "metric", "window_start", "window_end", "n", "value", "computed_at"}, rows)
}

// Verdicts returns the last n verdicts of a kind ending at or before end, newest first.
func (s *Store) Verdicts(ctx context.Context, model string, version int, kind string, end time.Time, n int) ([]bool, error) {
	method := "verdict"
	if kind == evaluate.Concept {
		method = "hanley_mcneil"
	}
	rows, err := s.conn.Query(ctx, `SELECT drifted FROM drift_metrics FINAL WHERE model = ? AND version = ? AND kind = ? AND method = ?
		AND window_end <= ? ORDER BY window_end DESC LIMIT ?`, model, uint32(version), kind, method, end.UTC(), n)
	if err != nil {
		return nil, fmt.Errorf("recent verdicts: %w", err)
	}
	defer rows.Close()
	var out []bool
	for rows.Next() {
		var d uint8
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d == 1)
	}
	return out, rows.Err()
}

// LastEvent is the window end of the model's newest event of a kind (zero: none).
func (s *Store) LastEvent(ctx context.Context, model, kind string) (time.Time, error) {
	var t time.Time
	var n uint64
	err := s.conn.QueryRow(ctx, `SELECT max(window_end), count() FROM drift_events FINAL WHERE model = ? AND kind = ?`, model, kind).Scan(&t, &n)
	if err != nil || n == 0 {
		return time.Time{}, err
	}
	return t, nil
}

var eventColumns = []string{"id", "model", "version", "kind", "features", "window_start", "window_end", "n", "detected_at", "event",
	"published", "alerted", "updated_at_ms"}

// RecordEvent records a decided event once: an id already recorded is left as it is (with
// its published and alerted flags).
func (s *Store) RecordEvent(ctx context.Context, ev schemas.DriftEvent) error {
	var n uint64
	if err := s.conn.QueryRow(ctx, `SELECT count() FROM drift_events WHERE model = ? AND id = ?`, ev.Model, ev.ID).Scan(&n); err != nil {
		return fmt.Errorf("look up drift event %s: %w", ev.ID, err)
	}
	if n > 0 {
		return nil
	}
	return s.putEvent(ctx, ev, false, false)
}

func (s *Store) putEvent(ctx context.Context, ev schemas.DriftEvent, published, alerted bool) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	features, _ := json.Marshal(ev.Features)
	return chx.Insert(ctx, s.conn, "drift_events", eventColumns, [][]any{{ev.ID, ev.Model, uint32(ev.Version), string(ev.Kind), string(features),
		ev.Window.Start, ev.Window.End, uint64(ev.Window.N), ev.DetectedAt, string(body), flag(published), flag(alerted), s.now().UnixMilli()}})
}

// Pending is an event not yet published or alerted.
type Pending struct {
	Event              schemas.DriftEvent
	Published, Alerted bool
}

// Pending returns the events detected since `since` that still need publishing or alerting.
func (s *Store) Pending(ctx context.Context, since time.Time) ([]Pending, error) {
	rows, err := s.conn.Query(ctx, `SELECT event, published, alerted FROM drift_events FINAL
		WHERE detected_at >= ? AND (published = 0 OR alerted = 0) ORDER BY detected_at`, since.UTC())
	if err != nil {
		return nil, fmt.Errorf("pending drift events: %w", err)
	}
	defer rows.Close()
	var out []Pending
	for rows.Next() {
		var body string
		var pub, al uint8
		if err := rows.Scan(&body, &pub, &al); err != nil {
			return nil, err
		}
		var p Pending
		if err := json.Unmarshal([]byte(body), &p.Event); err != nil {
			continue
		}
		p.Published, p.Alerted = pub == 1, al == 1
		out = append(out, p)
	}
	return out, rows.Err()
}

// Mark records the event's published and alerted flags.
func (s *Store) Mark(ctx context.Context, ev schemas.DriftEvent, published, alerted bool) error {
	return s.putEvent(ctx, ev, published, alerted)
}

// Recent returns the model's newest drift scores per kind, feature and method, and its
// newest events, for GET /v1/models/{name}/drift.
func (s *Store) Recent(ctx context.Context, model string, events int) (scores []map[string]any, evs []schemas.DriftEvent, err error) {
	rows, err := s.conn.Query(ctx, `SELECT version, kind, feature, method, argMax(window_end, window_end), argMax(n, window_end),
		argMax(score, window_end), argMax(threshold, window_end), argMax(drifted, window_end)
		FROM drift_metrics FINAL WHERE model = ? AND method != 'n' GROUP BY version, kind, feature, method ORDER BY version, kind, feature, method`, model)
	if err != nil {
		return nil, nil, fmt.Errorf("drift of %s: %w", model, err)
	}
	for rows.Next() {
		var version uint32
		var kind, feature, method string
		var end time.Time
		var n uint64
		var score, threshold float64
		var drifted uint8
		if err := rows.Scan(&version, &kind, &feature, &method, &end, &n, &score, &threshold, &drifted); err != nil {
			rows.Close()
			return nil, nil, err
		}
		scores = append(scores, map[string]any{"version": version, "kind": kind, "feature": feature, "method": method,
			"window_end": end, "n": n, "score": score, "threshold": threshold, "drifted": drifted == 1})
	}
	rows.Close()
	erows, err := s.conn.Query(ctx, `SELECT event FROM drift_events FINAL WHERE model = ? ORDER BY detected_at DESC LIMIT ?`, model, events)
	if err != nil {
		return nil, nil, fmt.Errorf("drift events of %s: %w", model, err)
	}
	defer erows.Close()
	for erows.Next() {
		var body string
		if err := erows.Scan(&body); err != nil {
			return nil, nil, err
		}
		var ev schemas.DriftEvent
		if json.Unmarshal([]byte(body), &ev) == nil {
			evs = append(evs, ev)
		}
	}
	return scores, evs, erows.Err()
}

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
