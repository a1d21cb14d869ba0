// Package events delivers registry changes at least once: the store appends each committed
// change to the OUTBOX JetStream stream before it answers (Outbox), and a relay publishes
// the stream, in order, to the Kafka topic `registry` (keyed by model name, or experiment id
// for experiment and run changes) and to NATS subjects `<prefix>registry.events.<type>`,
// resuming from its durable position after a crash (Relay).
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/schemas"
)

// Names of the outbox stream and the relay's position bucket, under the deployment prefix.
const (
	outboxStream   = "REGISTRY_OUTBOX"
	positionBucket = "REGISTRY_RELAY"
)

// Names lists the stream and bucket Open creates under prefix, for tests that clean up.
func Names(prefix string) (stream, bucket string) {
	return prefix + outboxStream, prefix + positionBucket
}

// retention bounds how long an event waits for the relay (Kafka down longer than this loses
// the oldest events; the stream's own size is otherwise unbounded).
const retention = 7 * 24 * time.Hour

// Outbox appends committed changes to the outbox stream. Each event gets its id once, here;
// the id is the stream message's Nats-Msg-Id (a retried append within the duplicate window
// is stored once) and travels unchanged to Kafka, however often the relay redelivers it.
type Outbox struct {
	js      jetstream.JetStream
	subject string
	log     *zap.Logger
	failed  prometheus.Counter
}

// OpenOutbox creates (or binds to) the outbox stream under prefix.
func OpenOutbox(ctx context.Context, js jetstream.JetStream, prefix string, log *zap.Logger, reg prometheus.Registerer) (*Outbox, error) {
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: prefix + outboxStream,
		Subjects: []string{prefix + "registry.outbox.>"}, Storage: jetstream.FileStorage,
		MaxAge: retention, Duplicates: 2 * time.Minute}); err != nil {
		return nil, fmt.Errorf("registry outbox stream: %w", err)
	}
	o := &Outbox{js: js, subject: prefix + "registry.outbox.", log: log,
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "flywheel_registry_events_dropped_total",
			Help: "Committed registry changes whose event could not be appended to the outbox (logged with the event)."})}
	if reg != nil {
		reg.MustRegister(o.failed)
	}
	return o, nil
}

// appendTimeout bounds the append of one event; it is detached from the request, so a
// client that hangs up after its change committed does not cancel the change's event.
const appendTimeout = 10 * time.Second

// Notify appends ev to the outbox and returns once JetStream stored it, retrying until
// appendTimeout. The store calls it after the commit and before it answers, so an answered
// change has its event unless JetStream refused the append for appendTimeout; that is
// logged with the whole event and counted, and the answer stays a success because the
// change is committed and cannot be undone (an error would invite a retry of a done change).
func (o *Outbox) Notify(ctx context.Context, ev schemas.RegistryEvent) {
	if ev.ID == "" {
		ev.ID = newEventID()
	}
	data, err := json.Marshal(ev)
	if err != nil {
		o.fail(ev, fmt.Errorf("encode: %w", err))
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		_, err = o.js.Publish(actx, o.subject+string(ev.Type), data, jetstream.WithMsgID(ev.ID))
		if err == nil {
			return
		}
		select {
		case <-actx.Done():
			o.fail(ev, err)
			return
		case <-time.After(backoff(attempt)):
		}
	}
}

func (o *Outbox) fail(ev schemas.RegistryEvent, err error) {
	o.failed.Inc()
	o.log.Error("registry event not appended to the outbox; the change is committed without it",
		zap.String("event_id", ev.ID), zap.String("type", string(ev.Type)), zap.String("model", ev.Model),
		zap.String("experiment_id", ev.ExperimentID), zap.String("run_id", ev.RunID), zap.Int("version", ev.Version),
		zap.String("alias", ev.Alias), zap.Error(err))
}

// newEventID is 24 random hex digits, the id format consumers saw before the outbox.
func newEventID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// backoff is 100 ms doubling to 5 s.
func backoff(attempt int) time.Duration {
	return min(100*time.Millisecond<<min(attempt, 6), 5*time.Second)
}
