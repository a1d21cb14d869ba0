package kafkax

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/retry"
	"github.com/flywheel-ml/flywheel/schemas"
)

// Handler processes a batch of messages from one or more partitions, each partition's
// messages in offset order. It is called from one goroutine at a time and must be idempotent:
// a batch whose offsets were not committed is delivered again after a crash or rebalance.
// Returning nil promises that every effect of the batch is durable; only then are its offsets
// committed. ctx is cancelled only when the drain timeout ends after shutdown was requested.
type Handler func(ctx context.Context, batch []kafka.Message) error

// ErrTransient marks failures of infrastructure rather than of a message (a sink is down).
// Such failures are retried until they succeed or the consumer stops; they are never counted
// towards dead-lettering.
var ErrTransient = errors.New("transient failure")

// Transient wraps err so the consumer retries it without dead-lettering.
func Transient(err error) error { return fmt.Errorf("%w: %w", ErrTransient, err) }

// ConsumerConfig configures one consumer group loop.
type ConsumerConfig struct {
	GroupID      string
	Topics       []string
	BatchSize    int           // most messages per handler call; default 500
	BatchWait    time.Duration // how long to fill a batch after its first message; default 20ms
	MaxAttempts  int           // failures before a message is dead-lettered; default 5
	RetryBackoff time.Duration // first retry delay, doubled up to 5s; default 100ms
	DrainTimeout time.Duration // how long the in-flight batch may take after shutdown; default 7s
	// DeadLetterTopic names where a message of topic goes after MaxAttempts failures. When it
	// returns "" the message is retried forever instead, holding back its partition.
	DeadLetterTopic func(topic string) string
	// FromLatest makes a group with no committed offsets start at the end of its partitions
	// instead of the beginning (a new deployment that must not replay the topic's history).
	FromLatest bool
}

func (c *ConsumerConfig) defaults() error {
	if c.GroupID == "" || len(c.Topics) == 0 {
		return errors.New("consumer needs a group id and at least one topic")
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.BatchWait <= 0 {
		c.BatchWait = 20 * time.Millisecond
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 7 * time.Second
	}
	if c.DeadLetterTopic == nil {
		c.DeadLetterTopic = DLQForStream
	}
	return nil
}

// DLQForStream sends messages of raw.<s> and events.<s> to dlq.<s>, and keeps retrying
// messages of any other topic.
func DLQForStream(topic string) string {
	if s, ok := schemas.StreamOf(topic); ok {
		return schemas.DLQTopic(s)
	}
	return ""
}

// Consumer runs one consumer group.
type Consumer struct {
	kcfg    Config
	cfg     ConsumerConfig
	handler Handler
	dlq     *Producer
	log     *zap.Logger
	m       consumerMetrics
}

type consumerMetrics struct {
	consumed, deadLettered *prometheus.CounterVec
	failures               prometheus.Counter
	lag                    *prometheus.GaugeVec
	batch                  prometheus.Histogram
}

// NewConsumer builds a consumer; dlq produces dead letters. Metrics carry the group label.
func NewConsumer(kcfg Config, cfg ConsumerConfig, handler Handler, dlq *Producer, log *zap.Logger, reg prometheus.Registerer) (*Consumer, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	group := prometheus.Labels{"group": cfg.GroupID}
	m := consumerMetrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flywheel_consumer_messages_total",
			Help: "Messages processed and committed.", ConstLabels: group}, []string{"topic"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flywheel_consumer_dead_lettered_total",
			Help: "Messages sent to a dead-letter topic after repeated failures.", ConstLabels: group}, []string{"topic"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "flywheel_consumer_handler_failures_total",
			Help: "Failed handler calls (each retry counts).", ConstLabels: group}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flywheel_consumer_lag",
			Help: "Messages behind the partition's high watermark at the last commit.", ConstLabels: group}, []string{"topic", "partition"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flywheel_consumer_batch_seconds",
			Help: "Time to process and commit one batch.", ConstLabels: group, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	for _, col := range []prometheus.Collector{m.consumed, m.deadLettered, m.failures, m.lag, m.batch} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("register consumer metrics for %s: %w", cfg.GroupID, err)
		}
	}
	return &Consumer{kcfg: kcfg, cfg: cfg, handler: handler, dlq: dlq, m: m,
		log: log.Named("consumer").With(zap.String("group", cfg.GroupID))}, nil
}

// Run consumes until ctx is cancelled, then finishes and commits the batch in flight (within
// the drain timeout) and leaves the group. Messages fetched but not yet handed to the handler
// are not committed and will be delivered again.
func (c *Consumer) Run(ctx context.Context) error {
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:               c.kcfg.Brokers,
		GroupID:               c.cfg.GroupID,
		GroupTopics:           c.cfg.Topics,
		MinBytes:              1,
		MaxBytes:              16 << 20,
		MaxWait:               250 * time.Millisecond,
		QueueCapacity:         c.cfg.BatchSize,
		StartOffset:           startOffset(c.cfg.FromLatest),
		CommitInterval:        0, // synchronous commits: CommitMessages returns once durable
		HeartbeatInterval:     time.Second,
		SessionTimeout:        10 * time.Second,
		RebalanceTimeout:      10 * time.Second,
		JoinGroupBackoff:      500 * time.Millisecond,
		ReadBackoffMin:        20 * time.Millisecond,
		ReadBackoffMax:        500 * time.Millisecond,
		WatchPartitionChanges: true,
		Dialer:                &kafka.Dialer{Timeout: c.kcfg.DialTimeout, DualStack: true},
		// kafka-go logs every failed dial of every partition, several lines a second while a
		// broker is down; the outage is reported once by the supervisor and by /readyz, so
		// its own lines are only for debugging.
		Logger:      kafka.LoggerFunc(func(f string, a ...any) { c.log.Debug(fmt.Sprintf(f, a...)) }),
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) { c.log.Debug(fmt.Sprintf(f, a...)) }),
	})
	defer func() {
		if err := reader.Close(); err != nil {
			c.log.Warn("close reader", zap.Error(err))
		}
	}()

	msgs := make(chan kafka.Message, c.cfg.BatchSize)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		for {
			m, err := reader.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() == nil {
					fetchErr <- fmt.Errorf("fetch from %v: %w", c.cfg.Topics, err)
				}
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()

	c.log.Info("consuming", zap.Strings("topics", c.cfg.Topics))
	for {
		batch := c.collect(ctx, msgs)
		if len(batch) == 0 {
			select {
			case err := <-fetchErr:
				return err
			default:
				return nil // stopped by ctx
			}
		}
		if err := c.handleAndCommit(ctx, reader, batch); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// collect waits for a first message, then fills the batch for at most BatchWait.
func (c *Consumer) collect(ctx context.Context, msgs <-chan kafka.Message) []kafka.Message {
	var batch []kafka.Message
	select {
	case m, ok := <-msgs:
		if !ok {
			return nil
		}
		batch = append(batch, m)
	case <-ctx.Done():
		return nil
	}
	timer := time.NewTimer(c.cfg.BatchWait)
	defer timer.Stop()
	for len(batch) < c.cfg.BatchSize {
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch
			}
			batch = append(batch, m)
		case <-timer.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

func (c *Consumer) handleAndCommit(ctx context.Context, reader *kafka.Reader, batch []kafka.Message) error {
	start := time.Now()
	// The batch in flight may finish after shutdown is requested, but not forever.
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(c.cfg.DrainTimeout, cancel) })
	defer stop()

	if err := c.process(work, batch); err != nil {
		if work.Err() != nil {
			c.log.Warn("batch abandoned at shutdown; it will be delivered again", zap.Int("messages", len(batch)), zap.Error(err))
			return nil
		}
		return err
	}
	if err := reader.CommitMessages(work, batch...); err != nil {
		if work.Err() != nil || ctx.Err() != nil {
			c.log.Warn("commit abandoned at shutdown; the batch will be delivered again", zap.Error(err))
			return nil
		}
		return fmt.Errorf("commit offsets: %w", err)
	}
	c.m.batch.Observe(time.Since(start).Seconds())
	last := map[string]kafka.Message{}
	for _, m := range batch {
		c.m.consumed.WithLabelValues(m.Topic).Inc()
		last[m.Topic+"/"+strconv.Itoa(m.Partition)] = m
	}
	for _, m := range last {
		c.m.lag.WithLabelValues(m.Topic, strconv.Itoa(m.Partition)).Set(float64(max(m.HighWaterMark-m.Offset-1, 0)))
	}
	return nil
}

// process runs the handler with retries. After MaxAttempts failures of a batch it retries the
// messages one by one, so one poison message is dead-lettered without taking its neighbours.
func (c *Consumer) process(ctx context.Context, batch []kafka.Message) error {
	err := c.attempt(ctx, batch)
	if err == nil {
		return nil
	}
	if len(batch) > 1 {
		c.log.Warn("batch keeps failing; isolating the failing messages", zap.Int("messages", len(batch)), zap.Error(err))
		for i := range batch {
			if err := c.process(ctx, batch[i:i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	return c.deadLetter(ctx, batch[0], err)
}

// attempt calls the handler until it succeeds, fails MaxAttempts times, or ctx ends.
// Transient failures (a sink is down) do not count and are logged sparingly: an outage of
// an hour costs a dozen lines.
func (c *Consumer) attempt(ctx context.Context, batch []kafka.Message) error {
	backoff := retry.Backoff{Initial: c.cfg.RetryBackoff, Max: 5 * time.Second}
	notify := retry.Logged(c.log, "handler failed; retrying", zap.Int("messages", len(batch)))
	failures, attempts := 0, 0
	for {
		err := c.handler(ctx, batch)
		if err == nil {
			if attempts > 0 {
				c.log.Info("handler recovered", zap.Int("failed_attempts", attempts))
			}
			return nil
		}
		c.m.failures.Inc()
		if ctx.Err() != nil {
			return err
		}
		if !errors.Is(err, ErrTransient) {
			failures++
			if failures >= c.cfg.MaxAttempts {
				return err
			}
		}
		attempts++
		wait := backoff.Delay(attempts)
		notify(attempts, err, wait)
		if !retry.Sleep(ctx, wait) {
			return err
		}
	}
}

func (c *Consumer) deadLetter(ctx context.Context, m kafka.Message, cause error) error {
	topic := c.cfg.DeadLetterTopic(m.Topic)
	if topic == "" {
		c.log.Error("message keeps failing and has no dead-letter topic; retrying", zap.String("topic", m.Topic),
			zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset), zap.Error(cause))
		if !retry.Sleep(ctx, 5*time.Second) {
			return cause
		}
		return c.process(ctx, []kafka.Message{m})
	}
	stream, ok := schemas.StreamOf(m.Topic)
	if !ok {
		stream = m.Topic
	}
	rec := schemas.NewDLQRecord(stream, []string{"processing failed: " + cause.Error()}, time.Now(), m.Value)
	rec.Source = &schemas.DLQSource{Transport: "kafka", Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Attempts: c.cfg.MaxAttempts}
	// The record must fit in one message, or the dead letter could never be written.
	value, err := rec.EncodeWithin(MaxValueBytes(c.dlq.MaxMessageBytes(), len(m.Key)))
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	backoff := c.cfg.RetryBackoff
	for {
		err := c.dlq.Produce(ctx, Message{Topic: topic, Key: m.Key, Value: value})
		if err == nil {
			break
		}
		c.log.Warn("dead-letter write failed; retrying", zap.String("dlq", topic), zap.Error(err))
		if !retry.Sleep(ctx, backoff) {
			return fmt.Errorf("write dead letter to %s: %w", topic, err)
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	c.m.deadLettered.WithLabelValues(m.Topic).Inc()
	c.log.Error("message dead-lettered", zap.String("topic", m.Topic), zap.Int("partition", m.Partition),
		zap.Int64("offset", m.Offset), zap.String("dlq", topic), zap.Error(cause))
	return nil
}

func startOffset(fromLatest bool) int64 {
	if fromLatest {
		return kafka.LastOffset
	}
	return kafka.FirstOffset
}
