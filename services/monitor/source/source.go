// Package source reads what the monitor evaluates from ClickHouse: the predictions of a
// window (landed exactly once per request id, read with FINAL), the model versions that
// served in a time range, and predictions joined to the labels that arrived for them.
// Windows are recomputed from this durable log, so a restart neither loses nor double counts.
package source

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Source queries ClickHouse.
type Source struct{ conn driver.Conn }

// New returns a source.
func New(conn driver.Conn) *Source { return &Source{conn: conn} }

// Served is a model version that answered in a range, with how often.
type Served struct {
	Model   string
	Version int
	N       uint64
	First   time.Time // its first prediction in the range
	Last    time.Time // its last prediction landed so far: windows after it are not complete yet
}

// Served lists the versions that answered (not in the shadow) in [start, end).
func (s *Source) Served(ctx context.Context, start, end time.Time) ([]Served, error) {
	// no FINAL: a replayed record only inflates N, and listing versions must stay cheap
	rows, err := s.conn.Query(ctx, `SELECT model, version, count(), min(ts_ms), max(ts_ms) FROM predictions
		WHERE ts >= toDateTime(?) AND ts_ms >= ? AND ts_ms < ? AND shadow = 0 GROUP BY model, version ORDER BY model, version`,
		uint32(start.Unix()),
		start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("versions served: %w", err)
	}
	defer rows.Close()
	var out []Served
	for rows.Next() {
		var sv Served
		var v uint32
		var first, last int64
		if err := rows.Scan(&sv.Model, &v, &sv.N, &first, &last); err != nil {
			return nil, err
		}
		sv.First, sv.Last = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
		sv.Version = int(v)
		out = append(out, sv)
	}
	return out, rows.Err()
}

// Prediction is one logged prediction of a window.
type Prediction struct {
	Features map[string]any
	Score    float64
}

// Window returns the predictions of one version in [start, end), shadow ones excluded.
func (s *Source) Window(ctx context.Context, model string, version int, start, end time.Time) ([]Prediction, error) {
	rows, err := s.conn.Query(ctx, `SELECT features, score FROM predictions FINAL
		WHERE model = ? AND version = ? AND shadow = 0 AND ts_ms >= ? AND ts_ms < ?`,
		model, uint32(version), start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("predictions of %s v%d: %w", model, version, err)
	}
	defer rows.Close()
	var out []Prediction
	for rows.Next() {
		var features string
		var p Prediction
		if err := rows.Scan(&features, &p.Score); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(features), &p.Features); err != nil {
			continue // a record written without features (not encodable) counts as nothing
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Labelled is a prediction with the label that arrived for it.
type Labelled struct {
	Score float64
	Label float64
}

// Labelled joins one version's predictions in [start, end) to the labels of labelStream:
// the prediction's request field eventIDField names the event a label names in its own
// eventIDField (for fraud: transaction_id), the newest label per event wins, and labels
// arriving more than horizon after the window's end are not counted.
func (s *Source) Labelled(ctx context.Context, model string, version int, start, end time.Time, labelStream, eventIDField, labelField string, horizon time.Duration) ([]Labelled, error) {
	rows, err := s.conn.Query(ctx, `SELECT p.score, l.label FROM (
			SELECT visitParamExtractString(request, ?) AS eid, score FROM predictions FINAL
			WHERE model = ? AND version = ? AND shadow = 0 AND ts_ms >= ? AND ts_ms < ?
		) AS p ALL INNER JOIN (
			SELECT visitParamExtractString(payload, ?) AS eid, argMax(visitParamExtractRaw(payload, ?), ingested_at_ms) AS label
			FROM events FINAL WHERE stream = ? AND event_time_ms >= ? AND event_time_ms < ? GROUP BY eid
		) AS l USING eid WHERE eid != ''`,
		eventIDField, model, uint32(version), start.UnixMilli(), end.UnixMilli(),
		eventIDField, labelField, labelStream, start.UnixMilli(), end.Add(horizon).UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("labels of %s v%d: %w", model, version, err)
	}
	defer rows.Close()
	var out []Labelled
	for rows.Next() {
		var l Labelled
		var raw string
		if err := rows.Scan(&l.Score, &raw); err != nil {
			return nil, err
		}
		switch raw {
		case "true", "1", `"true"`, `"1"`:
			l.Label = 1
		case "false", "0", `"false"`, `"0"`:
			l.Label = 0
		default:
			continue
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// LastWindowEnd is the end of the newest window already evaluated for a model version and
// kind (zero when none): where evaluation resumes after a restart.
func (s *Source) LastWindowEnd(ctx context.Context, model string, version int, kind string) (time.Time, error) {
	var end time.Time
	var n uint64
	err := s.conn.QueryRow(ctx, `SELECT max(window_end), count() FROM drift_metrics WHERE model = ? AND version = ? AND kind = ?`,
		model, uint32(version), kind).Scan(&end, &n)
	if err != nil || n == 0 {
		return time.Time{}, err
	}
	return end, nil
}

// SecondCount is how many predictions a version made in one second.
type SecondCount struct {
	Second time.Time
	N      int
}

// SecondCounts counts one version's predictions (each request id once, shadow ones
// excluded) per second in [start, end), ascending; seconds without any are left out.
func (s *Source) SecondCounts(ctx context.Context, model string, version int, start, end time.Time) ([]SecondCount, error) {
	rows, err := s.conn.Query(ctx, `SELECT intDiv(ts_ms, 1000) AS sec, count() FROM predictions FINAL
		WHERE model = ? AND version = ? AND shadow = 0 AND ts_ms >= ? AND ts_ms < ? GROUP BY sec ORDER BY sec`,
		model, uint32(version), start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("predictions per second of %s v%d: %w", model, version, err)
	}
	defer rows.Close()
	var out []SecondCount
	for rows.Next() {
		var sec int64
		var n uint64
		if err := rows.Scan(&sec, &n); err != nil {
			return nil, err
		}
		out = append(out, SecondCount{Second: time.Unix(sec, 0).UTC(), N: int(n)})
	}
	return out, rows.Err()
}

// Span is a window's bounds.
type Span struct{ Start, End time.Time }

// Windows lists the windows of a kind already evaluated for a version that end after
// since, oldest first.
func (s *Source) Windows(ctx context.Context, model string, version int, kind string, since time.Time) ([]Span, error) {
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT window_start, window_end FROM drift_metrics
		WHERE model = ? AND version = ? AND kind = ? AND window_end > toDateTime(?) ORDER BY window_end`,
		model, uint32(version), kind, uint32(since.Unix()))
	if err != nil {
		return nil, fmt.Errorf("windows of %s v%d: %w", model, version, err)
	}
	defer rows.Close()
	var out []Span
	for rows.Next() {
		var sp Span
		if err := rows.Scan(&sp.Start, &sp.End); err != nil {
			return nil, err
		}
		sp.Start, sp.End = sp.Start.UTC(), sp.End.UTC()
		out = append(out, sp)
	}
	return out, rows.Err()
}
