package events

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
)

// Producer is the Kafka side (kafkax.Producer): Produce returns nil only once the broker
// acknowledged every message, and gives up when ctx ends.
type Producer interface {
	Produce(ctx context.Context, msgs ...kafkax.Message) error
}

// RelayConfig names what the relay reads and writes.
type RelayConfig struct {
	Prefix string // deployment prefix of the outbox, the position bucket and the NATS subjects
	Topic  string // Kafka topic; schemas.TopicRegistry when empty (tests use their own)
	Batch  int    // events per Kafka produce; 500 when 0
	// LeaseTTL is how long a relay holding the lease may stay silent before another
	// process's relay takes over; 10 s when 0.
	LeaseTTL time.Duration
}

// Relay publishes the outbox to Kafka and NATS in stream order. Its position (the last
// outbox sequence Kafka acknowledged) is stored in the REGISTRY_RELAY bucket after every
// batch, so a relay that stops or crashes anywhere resumes after the last acknowledged
// batch: an event is published at least once, with the id it was given in the outbox.
// Kafka refusing or unreachable is retried with backoff, forever and on the same batch, so
// nothing is skipped and order holds. Several registry processes each run a relay; one at a
// time publishes, holding a lease in the same bucket (lease.go), and the others stand by to
// take over from the stored position. The position only moves forward.
type Relay struct {
	js      jetstream.JetStream
	nc      *nats.Conn
	kafka   Producer
	cfg     RelayConfig
	pos     jetstream.KeyValue
	id      string // this relay's lease holder id
	log     *zap.Logger
	sent    prometheus.Counter
	retries prometheus.Counter
}

const positionKey = "position"

// NewRelay binds to the position bucket (creating it); the outbox stream is OpenOutbox's.
// nc may be nil (no NATS subjects).
func NewRelay(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, kafka Producer, cfg RelayConfig, log *zap.Logger, reg prometheus.Registerer) (*Relay, error) {
	if cfg.Topic == "" {
		cfg.Topic = schemas.TopicRegistry
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	pos, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: cfg.Prefix + positionBucket, History: 1})
	if err != nil {
		return nil, fmt.Errorf("registry relay position bucket: %w", err)
	}
	r := &Relay{js: js, nc: nc, kafka: kafka, cfg: cfg, pos: pos, id: newEventID(), log: log,
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "flywheel_registry_events_published_total",
			Help: "Registry change events published to Kafka and NATS (redeliveries after a restart count again)."}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "flywheel_registry_events_retries_total",
			Help: "Failed attempts to publish a batch of registry events to Kafka (each is retried)."}),
	}
	if reg != nil {
		reg.MustRegister(r.sent, r.retries)
	}
	return r, nil
}

// Run relays, while it holds the lease, until ctx ends, then returns nil without waiting
// for Kafka: what is not yet acknowledged stays in the outbox for the next relay, and the
// lease is released for it. It never returns early; NATS errors (the outbox, the position
// or the lease unreadable) are retried with backoff too.
func (r *Relay) Run(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		rev, err := r.acquire(ctx)
		if err == nil {
			lctx, lost := context.WithCancel(ctx)
			held := make(chan uint64, 1)
			go func() { held <- r.hold(lctx, rev, lost) }()
			err = r.relay(lctx)
			wasLost := lctx.Err() != nil
			lost()
			rev = <-held
			if ctx.Err() != nil {
				r.release(ctx, rev)
				return nil
			}
			if wasLost { // the lease was lost: stand by at once
				attempt = -1
				continue
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		r.log.Warn("registry event relay interrupted; resuming from its stored position", zap.Error(err))
		if !sleep(ctx, backoff(attempt)) {
			return nil
		}
	}
}

// relay reads the outbox from the stored position on; it returns on the first error.
func (r *Relay) relay(ctx context.Context) error {
	from, err := r.position(ctx)
	if err != nil {
		return err
	}
	stream, _ := Names(r.cfg.Prefix)
	if from, err = r.check(ctx, stream, from); err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 0 {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from + 1}
	}
	cons, err := r.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("read registry outbox: %w", err)
	}
	for ctx.Err() == nil {
		// A short wait keeps shutdown prompt: Fetch does not watch ctx.
		batch, err := cons.Fetch(r.cfg.Batch, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return fmt.Errorf("read registry outbox: %w", err)
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(msgs) == 0 {
			return fmt.Errorf("read registry outbox: %w", err)
		}
		if len(msgs) == 0 {
			continue
		}
		if err := r.publish(ctx, msgs); err != nil {
			return err
		}
	}
	return nil
}

// publish sends one batch to Kafka until it is acknowledged (or ctx ends), then to NATS,
// then stores the position.
func (r *Relay) publish(ctx context.Context, msgs []jetstream.Msg) error {
	out := make([]kafkax.Message, 0, len(msgs))
	types := make([]schemas.RegistryEventType, 0, len(msgs))
	for _, m := range msgs {
		var ev schemas.RegistryEvent
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			// Only the Outbox writes here; an undecodable entry is published as stored
			// rather than skipped, so nothing is lost silently.
			r.log.Error("undecodable registry outbox entry; published as stored", zap.String("subject", m.Subject()), zap.Error(err))
		}
		key := ev.Model
		if key == "" {
			key = ev.ExperimentID
		}
		// The stored bytes go out unchanged: the JSON consumers see is what the store wrote.
		out = append(out, kafkax.Message{Topic: r.cfg.Topic, Key: []byte(key), Value: m.Data()})
		types = append(types, ev.Type)
	}
	for attempt := 0; ; attempt++ {
		// Each attempt is bounded, so a hung broker is retried rather than waited on.
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := r.kafka.Produce(pctx, out...)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.retries.Inc()
		r.log.Warn("publish registry events to Kafka; retrying", zap.Int("events", len(out)), zap.Int("attempt", attempt+1), zap.Error(err))
		if !sleep(ctx, backoff(attempt)) {
			return ctx.Err()
		}
	}
	if r.nc != nil {
		for i, m := range out {
			// Core NATS is best effort by nature; Kafka is the durable record.
			if err := r.nc.Publish(r.cfg.Prefix+"registry.events."+string(types[i]), m.Value); err != nil {
				r.log.Warn("publish registry event to NATS", zap.Error(err))
			}
		}
	}
	r.sent.Add(float64(len(out)))
	meta, err := msgs[len(msgs)-1].Metadata()
	if err != nil {
		return fmt.Errorf("registry outbox entry metadata: %w", err)
	}
	return r.store(ctx, meta.Sequence.Stream)
}

// check compares the stored position with the outbox. A position past the outbox's end
// means the stream was recreated (its sequences restarted): relaying from the position
// would skip every new event, so the relay starts over. A position before the outbox's
// start means events expired unpublished (Kafka was down longer than the retention): that
// loss is logged, loudly, since nothing can bring them back.
func (r *Relay) check(ctx context.Context, stream string, from uint64) (uint64, error) {
	s, err := r.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("read registry outbox: %w", err)
	}
	st := s.CachedInfo().State
	switch {
	case from > st.LastSeq:
		r.log.Warn("registry relay position is past the outbox's end (the stream was recreated); relaying it from its start",
			zap.Uint64("position", from), zap.Uint64("last_seq", st.LastSeq))
		return 0, nil
	case st.Msgs > 0 && from+1 < st.FirstSeq:
		r.log.Error("registry events expired from the outbox before the relay published them",
			zap.Uint64("position", from), zap.Uint64("first_seq", st.FirstSeq), zap.Uint64("lost", st.FirstSeq-from-1))
	}
	return from, nil
}

// position is the last outbox sequence Kafka acknowledged (0: none yet).
func (r *Relay) position(ctx context.Context) (uint64, error) {
	e, err := r.pos.Get(ctx, positionKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read registry relay position: %w", err)
	}
	if len(e.Value()) != 8 {
		return 0, fmt.Errorf("registry relay position: %d bytes, want 8", len(e.Value()))
	}
	return binary.BigEndian.Uint64(e.Value()), nil
}

// store records seq as the position, never moving it back (another relay may be ahead).
// It is detached from shutdown: Kafka already has the batch, and recording that saves a
// redelivery.
func (r *Relay) store(ctx context.Context, seq uint64) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	for {
		e, err := r.pos.Get(sctx, positionKey)
		var cur, rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("read registry relay position: %w", err)
		default:
			rev = e.Revision()
			if len(e.Value()) == 8 {
				cur = binary.BigEndian.Uint64(e.Value())
			}
		}
		if cur >= seq {
			return nil
		}
		val := binary.BigEndian.AppendUint64(nil, seq)
		if rev == 0 {
			_, err = r.pos.Create(sctx, positionKey, val)
		} else {
			_, err = r.pos.Update(sctx, positionKey, val, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("store registry relay position %d: %w", seq, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
