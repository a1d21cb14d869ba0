// Package skew checks for training-serving skew: it samples logged predictions, recomputes
// every feature serving fetched from the online store point in time from the offline store
// (the features module's own offline.Historical, the code the trainer builds datasets with)
// at the prediction's time, and counts the values that differ. Anything but zero means the
// model is served different inputs than it was trained on.
package skew

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/offline"
	"github.com/flywheel-ml/flywheel/services/features/online"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// Result is one feature's check over a window.
type Result struct {
	Model      string
	Version    int
	Feature    string
	N          int
	Mismatches int
	Example    string // the first mismatch, for the dashboard
}

// Checker runs the check.
type Checker struct {
	conn    driver.Conn
	catalog *views.Catalog
	engines map[string]*agg.Engine
}

// New returns a checker over the served feature views.
func New(conn driver.Conn, cat *views.Catalog) *Checker {
	c := &Checker{conn: conn, catalog: cat, engines: map[string]*agg.Engine{}}
	for _, n := range cat.Names() {
		v, _ := cat.Get(n)
		c.engines[n] = agg.NewEngine(v)
	}
	return c
}

type logged struct {
	model    string
	version  int
	entity   string
	ts       int64
	features map[string]any
	sources  map[string]string
}

// Check samples up to sample predictions per model version in [start, end) and compares
// their fetched features with the offline store's.
func (c *Checker) Check(ctx context.Context, start, end time.Time, sample int) ([]Result, error) {
	rows, err := c.conn.Query(ctx, `SELECT model, version, entity, ts_ms, features, sources, request FROM predictions
		WHERE ts >= toDateTime(?) AND ts_ms >= ? AND ts_ms < ? AND shadow = 0 AND position(sources, '"fetched"') > 0
		ORDER BY model, version, cityHash64(request_id) LIMIT ? BY model, version`, uint32(start.Unix()), start.UnixMilli(), end.UnixMilli(), sample)
	if err != nil {
		return nil, fmt.Errorf("sample predictions: %w", err)
	}
	var preds []logged
	for rows.Next() {
		var p logged
		var v uint32
		var f, s, req string
		if err := rows.Scan(&p.model, &v, &p.entity, &p.ts, &f, &s, &req); err != nil {
			rows.Close()
			return nil, err
		}
		p.version = int(v)
		p.ts = asOf(p.ts, req)
		if json.Unmarshal([]byte(f), &p.features) != nil || json.Unmarshal([]byte(s), &p.sources) != nil {
			continue
		}
		preds = append(preds, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	results := map[string]*Result{}
	// one offline computation per view over every sampled prediction that fetched from it
	byView := map[string][]int{}
	for i, p := range preds {
		seen := map[string]bool{}
		for name, src := range p.sources {
			view, _, ok := strings.Cut(name, ":")
			if src == "fetched" && ok && !seen[view] && c.engines[view] != nil {
				seen[view] = true
				byView[view] = append(byView[view], i)
			}
		}
	}
	for view, idx := range byView {
		e := c.engines[view]
		reqs := make([]offline.Row, len(idx))
		for k, i := range idx {
			// as the trainer reads an example's features: strictly before its time, since an
			// event stamped with the prediction's own millisecond (often the scored event
			// itself) cannot have been in the state serving read
			reqs[k] = offline.Row{Index: i, Entity: preds[i].entity, TS: preds[i].ts - 1}
		}
		err := offline.Historical(ctx, c.conn, e, reqs, func(row offline.Row, res []agg.Result) error {
			p := preds[row.Index]
			for name, src := range p.sources {
				v, feature, ok := strings.Cut(name, ":")
				if src != "fetched" || !ok || v != view {
					continue
				}
				fi, known := e.View.Feature(feature)
				if !known {
					continue
				}
				key := fmt.Sprintf("%s\x00%d\x00%s", p.model, p.version, name)
				r := results[key]
				if r == nil {
					r = &Result{Model: p.model, Version: p.version, Feature: name}
					results[key] = r
				}
				r.N++
				want := online.ValueOf(e.View, fi, res[fi]).Value
				if !same(p.features[name], want) {
					r.Mismatches++
					if r.Example == "" {
						r.Example = fmt.Sprintf("entity %s at %s: served %v, offline %v", p.entity,
							time.UnixMilli(p.ts).UTC().Format(time.RFC3339Nano), p.features[name], want)
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("recompute %s offline: %w", view, err)
		}
	}
	out := make([]Result, 0, len(results))
	for _, r := range results {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Model != out[j].Model {
			return out[i].Model < out[j].Model
		}
		if out[i].Version != out[j].Version {
			return out[i].Version < out[j].Version
		}
		return out[i].Feature < out[j].Feature
	})
	return out, nil
}

// asOf is when the prediction's features must be read offline to match what serving saw: 1 ms
// before the event it scored when the request carries that event's time (the event itself
// reaches the feature store only after serving scored it — the trainer's rule too), else the
// time serving read them.
func asOf(servedAt int64, request string) int64 {
	var r struct {
		EventTime string `json:"event_time"`
	}
	if json.Unmarshal([]byte(request), &r) == nil && r.EventTime != "" {
		if t, err := time.Parse(time.RFC3339Nano, r.EventTime); err == nil && t.UnixMilli() <= servedAt {
			return t.UnixMilli() - 1
		}
	}
	return servedAt
}

// same compares a logged value (decoded from JSON) with the offline one: numbers to a
// relative 1e-9 (sums in a different order differ in the last bits), others exactly.
func same(served, want any) bool {
	a, aok := number(served)
	b, bok := number(want)
	if aok && bok {
		return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
	}
	return fmt.Sprint(served) == fmt.Sprint(want)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// Write stores the results of a window.
func Write(ctx context.Context, conn driver.Conn, start, end time.Time, results []Result) error {
	rows := make([][]any, len(results))
	now := time.Now().UTC()
	for i, r := range results {
		rows[i] = []any{r.Model, uint32(r.Version), r.Feature, start.UTC(), end.UTC(), uint64(r.N), uint64(r.Mismatches), r.Example, now}
	}
	return chx.Insert(ctx, conn, "skew_checks", []string{"model", "version", "feature", "window_start", "window_end", "n", "mismatches", "example", "checked_at"}, rows)
}

// Run checks every closed window once, in step with the drift windows.
func Run(ctx context.Context, c *Checker, conn driver.Conn, window, grace time.Duration, sample int, log *zap.Logger) error {
	var last time.Time
	t := time.NewTicker(window / 4)
	defer t.Stop()
	for {
		end := time.Now().Add(-grace).Truncate(window)
		if end.After(last) {
			start := end.Add(-window)
			results, err := c.Check(ctx, start, end, sample)
			if err == nil {
				err = Write(ctx, conn, start, end, results)
			}
			if err != nil {
				log.Warn("skew check failed; retrying", zap.Error(err))
			} else {
				last = end
				for _, r := range results {
					if r.Mismatches > 0 {
						log.Warn("training-serving skew: served feature values differ from the offline store's",
							zap.String("model", r.Model), zap.Int("version", r.Version), zap.String("feature", r.Feature),
							zap.Int("mismatches", r.Mismatches), zap.Int("checked", r.N), zap.String("example", r.Example))
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
