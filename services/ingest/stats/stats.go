// Package stats counts ingest outcomes per stream: Prometheus counters for alerting, and
// per-minute rows in ClickHouse (ingest_stats) for Grafana.
package stats

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/chx"
)

// Outcomes of an event.
const (
	Accepted  = "accepted"
	Duplicate = "duplicate"
	Rejected  = "rejected"
)

type key struct {
	minute                             int64
	stream, transport, outcome, reason string
}

// Recorder aggregates counts in memory and flushes them to ClickHouse every interval. Rows
// are summed by SummingMergeTree, so flushing often costs nothing in correctness; counts of a
// flush that failed are kept for the next one. A crash loses at most one interval of counts
// (statistics, not data).
type Recorder struct {
	conn     driver.Conn // nil: Prometheus only
	interval time.Duration
	now      func() time.Time
	log      *zap.Logger
	events   *prometheus.CounterVec
	reasons  *prometheus.CounterVec

	mu     sync.Mutex
	counts map[key]uint64
}

// New returns a recorder registering its counters on reg.
func New(conn driver.Conn, interval time.Duration, reg prometheus.Registerer, log *zap.Logger) (*Recorder, error) {
	r := &Recorder{conn: conn, interval: interval, now: time.Now, log: log.Named("stats"), counts: map[key]uint64{},
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flywheel_ingest_events_total",
			Help: "Events by stream, transport and outcome (accepted, duplicate, rejected)."}, []string{"stream", "transport", "outcome"}),
		reasons: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flywheel_ingest_rejections_total",
			Help: "Rejection reasons by stream and broken rule (an event may have several)."}, []string{"stream", "rule"}),
	}
	for _, c := range []prometheus.Collector{r.events, r.reasons} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Rejection is the rule keys of one rejected event, e.g. ["/amount: minimum"].
type Rejection []string

// Record counts one batch's outcomes.
func (r *Recorder) Record(stream, transport string, accepted, duplicates int, rejections []Rejection) {
	r.events.WithLabelValues(stream, transport, Accepted).Add(float64(accepted))
	r.events.WithLabelValues(stream, transport, Duplicate).Add(float64(duplicates))
	r.events.WithLabelValues(stream, transport, Rejected).Add(float64(len(rejections)))
	minute := r.now().Unix() / 60 * 60
	r.mu.Lock()
	defer r.mu.Unlock()
	if accepted > 0 {
		r.counts[key{minute, stream, transport, Accepted, ""}] += uint64(accepted)
	}
	if duplicates > 0 {
		r.counts[key{minute, stream, transport, Duplicate, ""}] += uint64(duplicates)
	}
	for _, rej := range rejections {
		first := ""
		if len(rej) > 0 {
			first = truncate(rej[0])
		}
		// Each rejected event counts once, under its first reason, so sums stay exact.
		r.counts[key{minute, stream, transport, Rejected, first}]++
		for _, reason := range rej {
			rule := reason
			if i := strings.LastIndex(reason, ": "); i >= 0 {
				rule = reason[i+2:] // the keyword only: field names would explode label cardinality
			}
			r.reasons.WithLabelValues(stream, rule).Inc()
		}
	}
}

func truncate(s string) string {
	if len(s) > 128 {
		return s[:128]
	}
	return s
}

// Run flushes every interval until ctx ends, then once more.
func (r *Recorder) Run(ctx context.Context) error {
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

// Flush writes the counts gathered since the last flush.
func (r *Recorder) Flush(ctx context.Context) {
	r.mu.Lock()
	counts := r.counts
	r.counts = map[key]uint64{}
	r.mu.Unlock()
	if len(counts) == 0 || r.conn == nil {
		return
	}
	rows := make([][]any, 0, len(counts))
	for k, n := range counts {
		rows = append(rows, []any{time.Unix(k.minute, 0).UTC(), k.stream, k.transport, k.outcome, k.reason, n})
	}
	err := chx.Insert(ctx, r.conn, "ingest_stats", []string{"minute", "stream", "transport", "outcome", "reason", "events"}, rows)
	if err != nil {
		r.log.Warn("write ingest stats; keeping the counts for the next flush", zap.Error(err))
		r.mu.Lock()
		for k, n := range counts {
			r.counts[k] += n
		}
		r.mu.Unlock()
	}
}
