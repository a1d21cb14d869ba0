package kafkax

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
)

// Message is one record to produce.
type Message struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []kafka.Header
}

// Producer writes keyed messages with acks from all in-sync replicas. It is safe for
// concurrent use; concurrent calls are batched together.
type Producer struct {
	w        *kafka.Writer
	maxBytes int
}

// NewProducer returns a producer for cfg's brokers. Messages are partitioned by the murmur2
// hash of their key, as the Java client does, so producers in any language agree on which
// partition holds an entity.
func NewProducer(cfg Config) *Producer {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 1 << 20
	}
	return &Producer{maxBytes: cfg.MaxMessageBytes, w: &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    cfg.BatchSize,
		// The broker's limit applies to a whole record batch: batches above it would be
		// refused entirely, so kafka-go splits them to fit.
		BatchBytes:   int64(cfg.MaxMessageBytes),
		BatchTimeout: cfg.BatchTimeout,
		MaxAttempts:  5,
		WriteTimeout: 10 * time.Second,
		Transport:    &kafka.Transport{Dial: (&net.Dialer{Timeout: cfg.DialTimeout}).DialContext, IdleTimeout: time.Minute},
	}}
}

// Produce writes msgs and returns once the broker acknowledged all of them, or with the
// error of the first that failed. Cancelling ctx abandons the wait; some messages may still
// have been written.
func (p *Producer) Produce(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	km := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		km[i] = kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: m.Headers}
	}
	if err := p.w.WriteMessages(ctx, km...); err != nil {
		return fmt.Errorf("produce %d messages (first to %s): %w", len(msgs), msgs[0].Topic, err)
	}
	return nil
}

// MaxMessageBytes is the largest record (key, value and headers with their framing) the
// brokers accept.
func (p *Producer) MaxMessageBytes() int { return p.maxBytes }

// Close flushes pending writes and closes connections.
func (p *Producer) Close() error { return p.w.Close() }
