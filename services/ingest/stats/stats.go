// Package stats counts ingest outcomes per stream: Prometheus counters for alerting, and
// per-minute rows in ClickHouse (ingest_stats) for Grafana.
package stats

import (
	"context"
	"strings"
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

// Recorder counts outcomes in Prometheus and, per minute, in ClickHouse (ingest_stats).
type Recorder struct {
	rollup  *chx.Rollup
	events  *prometheus.CounterVec
	reasons *prometheus.CounterVec
}

// New returns a recorder registering its counters on reg; conn nil keeps Prometheus only.
func New(conn driver.Conn, interval time.Duration, reg prometheus.Registerer, log *zap.Logger) (*Recorder, error) {
	r := &Recorder{
		rollup: chx.NewRollup(conn, "ingest_stats", []string{"stream", "transport", "outcome", "reason"}, []string{"events"}, nil, interval, log),
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
	if accepted > 0 {
		r.rollup.Add([]string{stream, transport, Accepted, ""}, []uint64{uint64(accepted)}, nil)
	}
	if duplicates > 0 {
		r.rollup.Add([]string{stream, transport, Duplicate, ""}, []uint64{uint64(duplicates)}, nil)
	}
	for _, rej := range rejections {
		first := ""
		if len(rej) > 0 {
			first = truncate(rej[0])
		}
		// Each rejected event counts once, under its first reason, so sums stay exact.
		r.rollup.Add([]string{stream, transport, Rejected, first}, []uint64{1}, nil)
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

// Run flushes to ClickHouse until ctx ends.
func (r *Recorder) Run(ctx context.Context) error { return r.rollup.Run(ctx) }
