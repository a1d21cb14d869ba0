package runindex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/services/registry/store"
)

const historyTable = "registry_metric_history"

var historyColumns = []string{"run_id", "key", "step", "timestamp", "value"}

// Metrics moves metric points from the JetStream metrics stream into ClickHouse's
// registry_metric_history, acknowledging the stream only after the insert: a crash replays
// points, which collapse (the table's key is the whole point).
type Metrics struct {
	js       jetstream.JetStream
	stream   string
	consumer string
	conn     driver.Conn
	log      *zap.Logger
	progress
}

// NewMetrics builds the metrics projection reading stream through the durable consumer.
func NewMetrics(js jetstream.JetStream, stream, consumer string, conn driver.Conn, log *zap.Logger) *Metrics {
	return &Metrics{js: js, stream: stream, consumer: consumer, conn: conn, log: log, progress: *newProgress()}
}

// WaitFor blocks until the projection includes stream sequence seq (at most timeout).
func (p *Metrics) WaitFor(ctx context.Context, seq uint64, timeout time.Duration) error {
	return p.wait(ctx, seq, timeout)
}

// Run projects until ctx ends.
func (p *Metrics) Run(ctx context.Context) error {
	c, err := p.js.CreateOrUpdateConsumer(ctx, p.stream, jetstream.ConsumerConfig{
		Durable: p.consumer, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4 * maxBatch,
		AckWait: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("metrics consumer: %w", err)
	}
	if info, err := c.Info(ctx); err == nil {
		p.advance(info.AckFloor.Stream)
	}
	msgs := make(chan jetstream.Msg, maxBatch)
	cc, err := c.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(maxBatch))
	if err != nil {
		return fmt.Errorf("consume metrics: %w", err)
	}
	defer cc.Stop()
	var lastInsert time.Time
	for {
		var first jetstream.Msg
		select {
		case <-ctx.Done():
			return nil
		case first = <-msgs:
		}
		batch, _ := gather(ctx, msgs, first, lastInsert)
		if err := p.apply(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		lastInsert = time.Now()
	}
}

func (p *Metrics) apply(ctx context.Context, batch []jetstream.Msg) error {
	var rows [][]any
	for _, m := range batch {
		var b store.MetricBatch
		if err := json.Unmarshal(m.Data(), &b); err != nil {
			p.log.Error("skip undecodable metric batch", zap.Error(err))
			continue
		}
		for _, pt := range b.Metrics {
			rows = append(rows, []any{b.RunID, pt.Key, pt.Step, pt.Timestamp, pt.Value})
		}
	}
	if err := insertUntilDone(ctx, p.conn, historyTable, historyColumns, rows, p.log); err != nil {
		return err
	}
	// The stream is a work queue: each acknowledged batch leaves it. An ack that is lost
	// means a redelivery, whose points collapse in ClickHouse.
	for _, m := range batch {
		if err := m.Ack(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			p.log.Warn("ack metric batch", zap.Error(err))
			break
		}
	}
	if meta, err := batch[len(batch)-1].Metadata(); err == nil {
		p.advance(meta.Sequence.Stream)
	}
	return nil
}
