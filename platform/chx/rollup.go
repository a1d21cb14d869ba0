package chx

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"
)

// Rollup counts per minute and key in memory and flushes the sums to a SummingMergeTree
// table every interval: Grafana's statistics tables (ingest_stats, feature_stats). Counts of
// a failed flush are kept for the next one; a crash loses at most one interval of counts.
// Max columns keep the largest value seen in the minute (such as the newest event time).
type Rollup struct {
	conn     driver.Conn
	table    string
	keys     []string // key columns after "minute"
	sums     []string // summed columns
	maxes    []string // columns keeping their maximum
	interval time.Duration
	now      func() time.Time
	log      *zap.Logger

	mu   sync.Mutex
	rows map[string]*rollupRow
}

type rollupRow struct {
	minute int64
	keys   []string
	sums   []uint64
	maxes  []int64
}

// NewRollup returns a rollup of table (minute DateTime, keys..., sums..., maxes...).
func NewRollup(conn driver.Conn, table string, keys, sums, maxes []string, interval time.Duration, log *zap.Logger) *Rollup {
	return &Rollup{conn: conn, table: table, keys: keys, sums: sums, maxes: maxes, interval: interval, now: time.Now,
		log: log.Named("rollup").With(zap.String("table", table)), rows: map[string]*rollupRow{}}
}

// Add adds sums (aligned with the sum columns) and maxes (aligned with the max columns) to
// the current minute of keys.
func (r *Rollup) Add(keys []string, sums []uint64, maxes []int64) {
	minute := r.now().Unix() / 60 * 60
	id := strings.Join(keys, "\x00") + "\x00" + time.Unix(minute, 0).Format(time.RFC3339)
	r.mu.Lock()
	defer r.mu.Unlock()
	row := r.rows[id]
	if row == nil {
		row = &rollupRow{minute: minute, keys: keys, sums: make([]uint64, len(r.sums)), maxes: make([]int64, len(r.maxes))}
		r.rows[id] = row
	}
	for i, v := range sums {
		row.sums[i] += v
	}
	for i, v := range maxes {
		row.maxes[i] = max(row.maxes[i], v)
	}
}

// Run flushes every interval until ctx ends, then once more.
func (r *Rollup) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.Flush(ctx)
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			defer cancel()
			r.Flush(flushCtx)
			return nil
		}
	}
}

// Flush writes what was counted since the last flush.
func (r *Rollup) Flush(ctx context.Context) {
	r.mu.Lock()
	rows := r.rows
	r.rows = map[string]*rollupRow{}
	r.mu.Unlock()
	if len(rows) == 0 || r.conn == nil {
		return
	}
	columns := append(append(append([]string{"minute"}, r.keys...), r.sums...), r.maxes...)
	out := make([][]any, 0, len(rows))
	for _, row := range rows {
		vals := []any{time.Unix(row.minute, 0).UTC()}
		for _, k := range row.keys {
			vals = append(vals, k)
		}
		for _, v := range row.sums {
			vals = append(vals, v)
		}
		for _, v := range row.maxes {
			vals = append(vals, v)
		}
		out = append(out, vals)
	}
	if err := Insert(ctx, r.conn, r.table, columns, out); err != nil {
		r.log.Warn("flush failed; keeping the counts for the next flush", zap.Error(err))
		r.mu.Lock()
		for id, row := range rows {
			if cur, ok := r.rows[id]; ok {
				for i := range row.sums {
					cur.sums[i] += row.sums[i]
				}
				for i := range row.maxes {
					cur.maxes[i] = max(cur.maxes[i], row.maxes[i])
				}
			} else {
				r.rows[id] = row
			}
		}
		r.mu.Unlock()
	}
}
