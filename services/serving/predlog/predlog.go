// Package predlog publishes every prediction to the predictions topic without ever making a
// request wait for Kafka: records go into a bounded buffer that a background task drains in
// batches. When the buffer is full (Kafka down or too slow for long enough) a record is
// dropped and counted, never queued without bound.
package predlog

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/retry"
	"github.com/flywheel-ml/flywheel/schemas"
)

// Producer writes records to Kafka.
type Producer interface {
	Produce(ctx context.Context, msgs ...kafkax.Message) error
}

// Log is the prediction log.
type Log struct {
	producer Producer
	buf      chan *schemas.Prediction
	batch    int
	linger   time.Duration
	log      *zap.Logger

	published, dropped, failed prometheus.Counter
	buffered                   prometheus.GaugeFunc
}

// Linger is how long a write waits for more records after the first: fewer, larger writes
// cost the service and the brokers far less CPU per record than one write per request.
const Linger = 10 * time.Millisecond

// New returns a log buffering up to capacity records, publishing up to batch per write.
func New(p Producer, capacity, batch int, log *zap.Logger, reg prometheus.Registerer) *Log {
	l := &Log{producer: p, buf: make(chan *schemas.Prediction, capacity), batch: max(batch, 1), linger: Linger, log: log,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "serving_prediction_log_published_total",
			Help: "Predictions published to the predictions topic."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "serving_prediction_log_dropped_total",
			Help: "Predictions not logged because the buffer was full (Kafka down or too slow)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "serving_prediction_log_write_failures_total",
			Help: "Failed writes to the predictions topic (retried)."}),
	}
	l.buffered = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "serving_prediction_log_buffered",
		Help: "Predictions waiting to be published."}, func() float64 { return float64(len(l.buf)) })
	if reg != nil {
		reg.MustRegister(l.published, l.dropped, l.failed, l.buffered)
	}
	return l
}

// Publish queues p, or drops it when the buffer is full. It never blocks.
func (l *Log) Publish(p *schemas.Prediction) {
	select {
	case l.buf <- p:
	default:
		l.dropped.Inc()
	}
}

// Run publishes until ctx ends, then flushes what is buffered for up to flushTimeout.
func (l *Log) Run(ctx context.Context) error {
	pending := make([]*schemas.Prediction, 0, l.batch)
	backoff := retry.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}
	failures := 0
	for {
		if len(pending) == 0 {
			select {
			case <-ctx.Done():
				return l.flush(pending)
			case p := <-l.buf:
				pending = append(pending, p)
			}
			pending = l.lingerFor(ctx, pending)
		}
		pending = l.fill(pending)
		if err := l.write(ctx, pending); err != nil {
			if ctx.Err() != nil {
				return l.flush(pending)
			}
			l.failed.Inc()
			failures++
			if failures&(failures-1) == 0 {
				l.log.Warn("prediction log: write to the predictions topic failed; retrying (predictions are dropped and counted once the buffer is full)",
					zap.Int("failures", failures), zap.Int("pending", len(pending)+len(l.buf)), zap.Error(err))
			}
			select {
			case <-ctx.Done():
				return l.flush(pending)
			case <-time.After(backoff.Delay(failures)):
			}
			continue
		}
		if failures > 0 {
			l.log.Info("prediction log: writing again", zap.Int("failures", failures))
			failures = 0
		}
		pending = pending[:0]
	}
}

// FlushTimeout bounds the final flush at shutdown.
const FlushTimeout = 5 * time.Second

func (l *Log) flush(pending []*schemas.Prediction) error {
	ctx, cancel := context.WithTimeout(context.Background(), FlushTimeout)
	defer cancel()
	for {
		pending = l.fill(pending)
		if len(pending) == 0 {
			return nil
		}
		if err := l.write(ctx, pending); err != nil {
			l.log.Warn("prediction log: predictions not published at shutdown", zap.Int("lost", len(pending)+len(l.buf)), zap.Error(err))
			return nil
		}
		pending = pending[:0]
	}
}

// lingerFor tops pending up for up to l.linger, or until the batch is full or ctx ends.
func (l *Log) lingerFor(ctx context.Context, pending []*schemas.Prediction) []*schemas.Prediction {
	timer := time.NewTimer(l.linger)
	defer timer.Stop()
	for len(pending) < l.batch {
		select {
		case p := <-l.buf:
			pending = append(pending, p)
		case <-timer.C:
			return pending
		case <-ctx.Done():
			return pending
		}
	}
	return pending
}

// fill tops pending up from the buffer without waiting.
func (l *Log) fill(pending []*schemas.Prediction) []*schemas.Prediction {
	for len(pending) < l.batch {
		select {
		case p := <-l.buf:
			pending = append(pending, p)
		default:
			return pending
		}
	}
	return pending
}

func (l *Log) write(ctx context.Context, pending []*schemas.Prediction) error {
	msgs := make([]kafkax.Message, 0, len(pending))
	// One buffer holds every record of the batch; values are sliced from it once it has
	// stopped growing.
	var buf []byte
	ends := make([]int, 0, len(pending))
	for _, p := range pending {
		start := len(buf)
		b, err := schemas.AppendPredictionJSON(buf, p)
		if err != nil {
			// a value JSON cannot carry (NaN in a supplied feature): log it without features
			l.log.Warn("prediction log: record not encodable; logged without features", zap.String("request_id", p.RequestID), zap.Error(err))
			q := *p
			q.Features, q.Request = nil, nil
			if b, err = schemas.AppendPredictionJSON(buf[:start], &q); err != nil {
				buf = buf[:start]
				continue
			}
		}
		buf = b
		key := p.Entity
		if key == "" {
			key = p.RequestID
		}
		ends = append(ends, len(buf))
		msgs = append(msgs, kafkax.Message{Topic: schemas.TopicPredictions, Key: []byte(key)})
	}
	start := 0
	for i, end := range ends {
		msgs[i].Value = buf[start:end:end]
		start = end
	}
	if err := l.producer.Produce(ctx, msgs...); err != nil {
		return err
	}
	l.published.Add(float64(len(msgs)))
	return nil
}
