// Package events publishes registry changes to the Kafka topic `registry` (keyed by model
// name, or experiment id for experiment and run changes) and to NATS subjects
// `<prefix>registry.events.<type>`, in commit order, off the request path.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
)

// Producer is the Kafka side (kafkax.Producer).
type Producer interface {
	Produce(ctx context.Context, msgs ...kafkax.Message) error
}

// Publisher queues committed changes and publishes them in order. The queue is in memory:
// a crash loses the changes not yet published (the KV state and the alias watch remain the
// source of truth), and a full queue drops and counts instead of blocking writes.
type Publisher struct {
	kafka   Producer
	nc      *nats.Conn
	subject string
	log     *zap.Logger
	queue   chan schemas.RegistryEvent
	dropped prometheus.Counter
	sent    prometheus.Counter
}

// New builds a publisher; subjectPrefix is the deployment prefix ("" in production).
func New(kafka Producer, nc *nats.Conn, subjectPrefix string, log *zap.Logger, reg prometheus.Registerer) *Publisher {
	p := &Publisher{kafka: kafka, nc: nc, subject: subjectPrefix + "registry.events.", log: log,
		queue: make(chan schemas.RegistryEvent, 10000),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "flywheel_registry_events_dropped_total",
			Help: "Registry change events dropped because the publish queue was full."}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "flywheel_registry_events_published_total",
			Help: "Registry change events published to Kafka and NATS."}),
	}
	if reg != nil {
		reg.MustRegister(p.dropped, p.sent)
	}
	return p
}

// Notify queues an event; it never blocks.
func (p *Publisher) Notify(_ context.Context, ev schemas.RegistryEvent) {
	if ev.ID == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		ev.ID = hex.EncodeToString(b[:])
	}
	select {
	case p.queue <- ev:
	default:
		p.dropped.Inc()
		p.log.Warn("registry event queue full; event dropped", zap.String("type", string(ev.Type)), zap.String("model", ev.Model))
	}
}

// Run publishes queued events until ctx ends, then flushes what is queued (bounded by the
// shutdown context of the caller).
func (p *Publisher) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case ev := <-p.queue:
					p.publish(ctx, []schemas.RegistryEvent{ev})
				default:
					return nil
				}
			}
		case ev := <-p.queue:
			batch := []schemas.RegistryEvent{ev}
		drain:
			for len(batch) < 500 {
				select {
				case ev := <-p.queue:
					batch = append(batch, ev)
				default:
					break drain
				}
			}
			p.publish(ctx, batch)
		}
	}
}

func (p *Publisher) publish(ctx context.Context, batch []schemas.RegistryEvent) {
	msgs := make([]kafkax.Message, 0, len(batch))
	for _, ev := range batch {
		data, _ := json.Marshal(ev)
		key := ev.Model
		if key == "" {
			key = ev.ExperimentID
		}
		msgs = append(msgs, kafkax.Message{Topic: schemas.TopicRegistry, Key: []byte(key), Value: data})
		if p.nc != nil {
			if err := p.nc.Publish(p.subject+string(ev.Type), data); err != nil {
				p.log.Warn("publish registry event to NATS", zap.Error(err))
			}
		}
	}
	for attempt := 0; ; attempt++ {
		// Each attempt gets its own deadline, detached from shutdown, so changes already
		// committed are still published while the service stops.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := p.kafka.Produce(pctx, msgs...)
		cancel()
		if err == nil {
			p.sent.Add(float64(len(msgs)))
			return
		}
		if ctx.Err() != nil {
			p.log.Warn("registry events not published to Kafka before shutdown", zap.Int("events", len(msgs)), zap.Error(err))
			return
		}
		p.log.Warn("publish registry events to Kafka; retrying", zap.Int("events", len(msgs)), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(min(attempt+1, 10)) * 200 * time.Millisecond):
		}
	}
}
