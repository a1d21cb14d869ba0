// Package landing lands the predictions topic in ClickHouse's predictions table, the table
// Grafana, the skew check and the label join read. Offsets are committed after the insert,
// so a crash re-inserts at most one batch; the table is a ReplacingMergeTree on
// (model, request_id), so each request id counts once under FINAL.
package landing

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
)

var columns = []string{"request_id", "model", "version", "entity", "features", "output", "score", "ts", "ts_ms",
	"latency_us", "alias", "shadow", "sources", "request"}

// Lander writes prediction records to ClickHouse.
type Lander struct {
	conn             driver.Conn
	log              *zap.Logger
	landed, rejected prometheus.Counter
}

// New returns a lander.
func New(conn driver.Conn, log *zap.Logger, reg prometheus.Registerer) *Lander {
	l := &Lander{conn: conn, log: log,
		landed: prometheus.NewCounter(prometheus.CounterOpts{Name: "monitor_predictions_landed_total",
			Help: "Prediction records written to ClickHouse."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "monitor_predictions_rejected_total",
			Help: "Records on the predictions topic that are not predictions (skipped, logged)."}),
	}
	if reg != nil {
		reg.MustRegister(l.landed, l.rejected)
	}
	return l
}

// Handle is the consumer's handler: one insert per batch.
func (l *Lander) Handle(ctx context.Context, batch []kafka.Message) error {
	rows := make([][]any, 0, len(batch))
	for _, m := range batch {
		row, err := Row(m.Value)
		if err != nil {
			l.rejected.Inc()
			l.log.Warn("a record on the predictions topic is not a prediction; skipped", zap.Int("partition", m.Partition),
				zap.Int64("offset", m.Offset), zap.Error(err))
			continue
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil
	}
	if err := chx.Insert(ctx, l.conn, "predictions", columns, rows); err != nil {
		return kafkax.Transient(err)
	}
	l.landed.Add(float64(len(rows)))
	return nil
}

// Row is the table row of one record.
func Row(value []byte) ([]any, error) {
	var p schemas.Prediction
	if err := json.Unmarshal(value, &p); err != nil {
		return nil, err
	}
	if p.RequestID == "" || p.Model == "" {
		return nil, errMissingID
	}
	features, _ := json.Marshal(p.Features)
	sources, _ := json.Marshal(p.Sources)
	request, _ := json.Marshal(p.Request)
	ts := p.TS
	if ts.IsZero() {
		ts = time.Now()
	}
	shadow := uint8(0)
	if p.Shadow {
		shadow = 1
	}
	output := string(p.Output)
	if output == "" {
		output = "{}"
	}
	return []any{p.RequestID, p.Model, uint32(max(p.Version, 0)), p.Entity, string(features), output, p.Score,
		ts.UTC().Truncate(time.Second), ts.UnixMilli(), uint32(min(max(p.LatencyUS, 0), 1<<32-1)), p.Alias, shadow,
		string(sources), string(request)}, nil
}

type missingID struct{}

func (missingID) Error() string { return "a prediction needs request_id and model" }

var errMissingID error = missingID{}
