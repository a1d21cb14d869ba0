package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/natsx"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/registry/events"
)

// fixture is an outbox and a Kafka topic of the test's own.
type fixture struct {
	t      *testing.T
	conn   *natsx.Conn
	kcfg   kafkax.Config
	prefix string
	topic  string
	outbox *events.Outbox
	lease  time.Duration // the relays' LeaseTTL (0: the default)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, conn: testenv.NATS(t), kcfg: testenv.Kafka(t), prefix: testenv.Unique(t, "EV") + "_", topic: testenv.Unique(t, "registry")}
	testenv.Topics(t, f.kcfg, f.topic)
	t.Cleanup(func() {
		stream, bucket := events.Names(f.prefix)
		_ = f.conn.JS.DeleteStream(context.Background(), stream)
		_ = f.conn.JS.DeleteKeyValue(context.Background(), bucket)
	})
	var err error
	if f.outbox, err = events.OpenOutbox(testenv.Context(t), f.conn.JS, f.prefix, zap.NewNop(), nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// commit appends n events over three models, as the store does after each commit, and
// returns them with the ids they were given.
func (f *fixture) commit(n int) []schemas.RegistryEvent {
	f.t.Helper()
	out := make([]schemas.RegistryEvent, n)
	for i := range out {
		out[i] = schemas.RegistryEvent{ID: fmt.Sprintf("ev-%03d", i), Type: schemas.RegistryVersionCreated,
			Model: fmt.Sprintf("m%d", i%3), Version: i/3 + 1, At: time.Unix(1_800_000_000, 0).UTC()}
		f.outbox.Notify(context.Background(), out[i])
	}
	return out
}

// relay starts a relay with producer; the returned stop cancels it and waits for Run.
func (f *fixture) relay(p events.Producer) (stop func() time.Duration) {
	f.t.Helper()
	r, err := events.NewRelay(testenv.Context(f.t), f.conn.JS, f.conn.NC, p, events.RelayConfig{Prefix: f.prefix, Topic: f.topic, Batch: 4, LeaseTTL: f.lease}, zap.NewNop(), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var took time.Duration
	stop = func() time.Duration {
		once.Do(func() {
			start := time.Now()
			cancel()
			if err := <-done; err != nil {
				f.t.Errorf("relay Run: %v", err)
			}
			took = time.Since(start)
		})
		return took
	}
	f.t.Cleanup(func() { stop() })
	return stop
}

// read returns every event on the topic, per key (model, else experiment) in partition order, waiting until at
// least want distinct ids arrived (or failing).
func (f *fixture) read(want int) map[string][]schemas.RegistryEvent {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(testenv.Context(f.t), 30*time.Second)
	defer cancel()
	for {
		byKey, ids := map[string][]schemas.RegistryEvent{}, map[string]bool{}
		for p := range f.kcfg.Partitions {
			// The dial has its own deadline, so running out of time reports the count below.
			conn, err := kafka.DialLeader(testenv.Context(f.t), "tcp", f.kcfg.Brokers[0], f.topic, p)
			if err != nil {
				f.t.Fatal(err)
			}
			end, err := conn.ReadLastOffset()
			conn.Close()
			if err != nil {
				f.t.Fatal(err)
			}
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: f.kcfg.Brokers, Topic: f.topic, Partition: p, MaxWait: 100 * time.Millisecond})
			for next := int64(0); next < end; {
				m, err := r.ReadMessage(testenv.Context(f.t))
				if err != nil {
					f.t.Fatalf("read %s: %v", f.topic, err)
				}
				next = m.Offset + 1
				var ev schemas.RegistryEvent
				if err := json.Unmarshal(m.Value, &ev); err != nil {
					f.t.Fatalf("event JSON %s: %v", m.Value, err)
				}
				key := ev.Model
				if key == "" {
					key = ev.ExperimentID
				}
				if string(m.Key) != key {
					f.t.Fatalf("event %s keyed %q, want its model or experiment %q", ev.ID, m.Key, key)
				}
				byKey[key] = append(byKey[key], ev)
				ids[ev.ID] = true
			}
			r.Close()
		}
		if len(ids) >= want {
			return byKey
		}
		select {
		case <-ctx.Done():
			f.t.Fatalf("%d of %d events on %s", len(ids), want, f.topic)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkAll fails unless every committed event is on Kafka, with its id and fields, and each
// model's events first appear in commit order.
func (f *fixture) checkAll(committed []schemas.RegistryEvent) (duplicates int) {
	f.t.Helper()
	byKey := f.read(len(committed))
	wantByKey := map[string][]schemas.RegistryEvent{}
	for _, ev := range committed {
		wantByKey[ev.Model] = append(wantByKey[ev.Model], ev)
	}
	for model, want := range wantByKey {
		seen := map[string]bool{}
		var firsts []schemas.RegistryEvent
		for _, ev := range byKey[model] {
			if seen[ev.ID] {
				duplicates++
				continue
			}
			seen[ev.ID] = true
			firsts = append(firsts, ev)
		}
		if len(firsts) != len(want) {
			f.t.Fatalf("model %s: %d distinct events on Kafka, want %d", model, len(firsts), len(want))
		}
		for i := range want {
			if firsts[i] != want[i] {
				f.t.Fatalf("model %s event %d: got %+v, want %+v (order or content changed)", model, i, firsts[i], want[i])
			}
		}
	}
	return duplicates
}

// hangAfter acknowledges the first n produce calls through the real producer, then hangs
// until its context ends: a relay that dies between the commit and the Kafka publish.
type hangAfter struct {
	real events.Producer
	n    int32
	// landed: the hanging call first writes its batch, so Kafka has it but the relay dies
	// before it hears so (before it stores its position).
	landed bool
	calls  atomic.Int32
	hung   chan struct{}
	once   sync.Once
}

func (h *hangAfter) Produce(ctx context.Context, msgs ...kafkax.Message) error {
	if h.calls.Add(1) <= h.n {
		return h.real.Produce(ctx, msgs...)
	}
	if h.landed {
		if err := h.real.Produce(ctx, msgs...); err != nil {
			return err
		}
	}
	h.once.Do(func() { close(h.hung) })
	<-ctx.Done()
	return ctx.Err()
}

// The change is committed (in the outbox) and the relay stops before Kafka has it: a new
// relay resumes from the stored position and every event reaches Kafka with its id, in
// order per model.
func TestRelayResumesAfterACrashBeforeThePublish(t *testing.T) {
	f := newFixture(t)
	real := kafkax.NewProducer(f.kcfg)
	t.Cleanup(func() { _ = real.Close() })
	committed := f.commit(30)

	h := &hangAfter{real: real, n: 2, hung: make(chan struct{})}
	stop := f.relay(h)
	select {
	case <-h.hung:
	case <-time.After(20 * time.Second):
		t.Fatal("the first relay never reached its third batch")
	}
	stop() // the crash: 8 events published, the rest committed but not on Kafka

	f.relay(real)
	if dups := f.checkAll(committed); dups != 0 {
		// The first relay stored its position after each acknowledged batch.
		t.Errorf("%d duplicates after a clean stop between batches", dups)
	}
}

// Events committed while no relay runs at all (the process died right after the commits)
// are all published by the next relay.
func TestRelayPublishesWhatWasCommittedWhileItWasDown(t *testing.T) {
	f := newFixture(t)
	committed := f.commit(10)
	real := kafkax.NewProducer(f.kcfg)
	t.Cleanup(func() { _ = real.Close() })
	f.relay(real)
	f.checkAll(committed)
	// And events committed while it runs follow.
	later := []schemas.RegistryEvent{{ID: "later", Type: schemas.RegistryAliasMoved, Model: "m1", Alias: "champion", Version: 2, PreviousVersion: 1, At: time.Unix(1_800_000_100, 0).UTC()}}
	f.outbox.Notify(context.Background(), later[0])
	f.checkAll(append(committed, later...))
}

// switchable sends to down (a producer pointed at a closed port) until up is set.
type switchable struct {
	down, up events.Producer
	isUp     atomic.Bool
	failures atomic.Int32
}

func (s *switchable) Produce(ctx context.Context, msgs ...kafkax.Message) error {
	if s.isUp.Load() {
		return s.up.Produce(ctx, msgs...)
	}
	err := s.down.Produce(ctx, msgs...)
	if err == nil {
		return errors.New("a producer on a closed port succeeded")
	}
	s.failures.Add(1)
	return err
}

func downProducer(t *testing.T) events.Producer {
	down := kafkax.NewProducer(kafkax.Config{Brokers: []string{testenv.FreeAddr(t)}, BatchSize: 10,
		BatchTimeout: time.Millisecond, DialTimeout: 200 * time.Millisecond, MaxMessageBytes: 1 << 20})
	t.Cleanup(func() { _ = down.Close() })
	return down
}

// Kafka down for a while: the relay retries the same batch, never skipping, and every event
// arrives once Kafka is back.
func TestRelayWaitsOutKafkaDown(t *testing.T) {
	f := newFixture(t)
	up := kafkax.NewProducer(f.kcfg)
	t.Cleanup(func() { _ = up.Close() })
	p := &switchable{down: downProducer(t), up: up}
	f.relay(p)
	committed := f.commit(12)
	deadline := time.Now().Add(20 * time.Second)
	for p.failures.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the relay tried Kafka %d times while it was down", p.failures.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.isUp.Store(true)
	if dups := f.checkAll(committed); dups != 0 {
		t.Errorf("%d duplicates: a failed produce must not have been half-recorded", dups)
	}
}

// A relay stuck on an unreachable Kafka still stops promptly, and the events stay for the
// next one.
func TestRelayStopsWithinTheShutdownBoundWhileKafkaIsDown(t *testing.T) {
	f := newFixture(t)
	p := &switchable{down: downProducer(t)}
	stop := f.relay(p)
	committed := f.commit(3)
	for p.failures.Load() < 1 {
		time.Sleep(50 * time.Millisecond)
	}
	if took := stop(); took > 2*time.Second {
		t.Fatalf("relay took %v to stop", took)
	}
	up := kafkax.NewProducer(f.kcfg)
	t.Cleanup(func() { _ = up.Close() })
	f.relay(up)
	f.checkAll(committed)
}

// The relay dies after Kafka stored a batch but before it recorded that: the next relay
// publishes the batch again, with the same ids (consumers dedupe), and nothing is missing.
func TestRelayRedeliversWithStableIDs(t *testing.T) {
	f := newFixture(t)
	real := kafkax.NewProducer(f.kcfg)
	t.Cleanup(func() { _ = real.Close() })
	committed := f.commit(12)
	h := &hangAfter{real: real, n: 1, landed: true, hung: make(chan struct{})}
	stop := f.relay(h)
	select {
	case <-h.hung:
	case <-time.After(20 * time.Second):
		t.Fatal("the first relay never reached its second batch")
	}
	stop()
	f.relay(real)
	if dups := f.checkAll(committed); dups != 4 {
		t.Errorf("%d duplicates, want the 4 events of the batch Kafka had when the relay died", dups)
	}
}

// An outbox deleted and recreated (its sequences start over) is relayed from its start, not
// from the old, higher position.
func TestRelayStartsOverOnARecreatedOutbox(t *testing.T) {
	f := newFixture(t)
	real := kafkax.NewProducer(f.kcfg)
	t.Cleanup(func() { _ = real.Close() })
	first := f.commit(9)
	stop := f.relay(real)
	f.checkAll(first)
	stop()
	stream, _ := events.Names(f.prefix)
	if err := f.conn.JS.DeleteStream(testenv.Context(t), stream); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.outbox, err = events.OpenOutbox(testenv.Context(t), f.conn.JS, f.prefix, zap.NewNop(), nil); err != nil {
		t.Fatal(err)
	}
	second := []schemas.RegistryEvent{{ID: "after-recreate", Type: schemas.RegistryModelCreated, Model: "m0", At: time.Unix(1_800_000_200, 0).UTC()}}
	f.outbox.Notify(context.Background(), second[0])
	f.relay(real)
	f.checkAll(append(first, second...))
}

// failing refuses the first n produce calls, then records every message it is given: a
// Kafka producer failing for a while, without a broker.
type failing struct {
	mu       sync.Mutex
	n        int
	attempts int
	got      []schemas.RegistryEvent
	keys     []string
}

func (p *failing) Produce(ctx context.Context, msgs ...kafkax.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attempts++
	if p.attempts <= p.n {
		return fmt.Errorf("broker refused (attempt %d)", p.attempts)
	}
	for _, m := range msgs {
		var ev schemas.RegistryEvent
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			return err
		}
		p.got = append(p.got, ev)
		p.keys = append(p.keys, string(m.Key))
	}
	return nil
}

func (p *failing) snapshot() (attempts int, got []schemas.RegistryEvent, keys []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attempts, append([]schemas.RegistryEvent(nil), p.got...), append([]string(nil), p.keys...)
}

// The producer fails its first 4 attempts: the relay retries the same batch (nothing
// skipped, nothing half-recorded) and then delivers every event exactly once, in outbox order,
// keyed by model.
func TestRelayRetriesAFailingProducerInOrder(t *testing.T) {
	f := newFixture(t)
	p := &failing{n: 4}
	committed := f.commit(10)
	f.relay(p)
	deadline := time.Now().Add(20 * time.Second)
	for {
		attempts, got, keys := p.snapshot()
		if len(got) >= len(committed) {
			if attempts < 4+3 { // 4 refusals, then batches of at most 4
				t.Errorf("%d produce attempts, want at least 7", attempts)
			}
			if len(got) != len(committed) {
				t.Fatalf("%d events produced, want %d", len(got), len(committed))
			}
			for i := range committed {
				if got[i] != committed[i] || keys[i] != committed[i].Model {
					t.Fatalf("event %d: got %+v keyed %q, want %+v keyed %q", i, got[i], keys[i], committed[i], committed[i].Model)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d attempts, %d of %d events produced", attempts, len(got), len(committed))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls until p produced want events, or fails.
func waitFor(t *testing.T, p *failing, want int) []schemas.RegistryEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, got, _ := p.snapshot()
		if len(got) >= want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events produced", len(got), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ids(evs []schemas.RegistryEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// Two registry processes: one relay publishes, the other stands by and takes over from the
// stored position once the first stops (and releases the lease); every event is produced
// once, in order.
func TestOneRelayPublishesAndAnotherTakesOver(t *testing.T) {
	f := newFixture(t)
	f.lease = time.Second
	a, b := &failing{}, &failing{}
	stopA := f.relay(a)
	time.Sleep(200 * time.Millisecond) // a takes the lease first
	f.relay(b)
	first := f.commit(8)
	waitFor(t, a, len(first))
	time.Sleep(time.Second) // give b every chance to publish too
	if _, got, _ := b.snapshot(); len(got) != 0 {
		t.Fatalf("the standby relay published %d events while the other held the lease", len(got))
	}
	stopA()
	more := make([]schemas.RegistryEvent, 4)
	for i := range more {
		more[i] = schemas.RegistryEvent{ID: fmt.Sprintf("more-%d", i), Type: schemas.RegistryModelCreated, Model: "m9", At: time.Unix(1_800_000_300, 0).UTC()}
		f.outbox.Notify(context.Background(), more[i])
	}
	got := waitFor(t, b, len(more))
	if fmt.Sprint(ids(got)) != fmt.Sprint(ids(more)) {
		t.Fatalf("after the takeover the standby produced %v, want exactly %v", ids(got), ids(more))
	}
	if _, gotA, _ := a.snapshot(); fmt.Sprint(ids(gotA)) != fmt.Sprint(ids(first)) {
		t.Fatalf("the first relay produced %v, want %v", ids(gotA), ids(first))
	}
}

// A holder that died without releasing the lease (a crash) is taken over once it has been
// silent for the lease's time; nothing committed meanwhile is missing.
func TestRelayTakesOverFromACrashedHolder(t *testing.T) {
	f := newFixture(t)
	f.lease = time.Second
	_, bucket := events.Names(f.prefix)
	kv, err := f.conn.JS.CreateOrUpdateKeyValue(testenv.Context(t), jetstream.KeyValueConfig{Bucket: bucket, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(testenv.Context(t), "leader", []byte("a-crashed-process")); err != nil {
		t.Fatal(err)
	}
	committed := f.commit(6)
	p := &failing{}
	start := time.Now()
	f.relay(p)
	got := waitFor(t, p, len(committed))
	if took := time.Since(start); took < f.lease {
		t.Fatalf("took over after %v, before the holder had been silent for %v", took, f.lease)
	}
	if fmt.Sprint(ids(got)) != fmt.Sprint(ids(committed)) {
		t.Fatalf("produced %v, want %v", ids(got), ids(committed))
	}
}

// A holder whose lease another process took stops publishing, and takes the lease back
// once that process falls silent; what was committed meanwhile then arrives, in order.
func TestRelayStopsPublishingWhenItsLeaseIsTaken(t *testing.T) {
	f := newFixture(t)
	f.lease = time.Second
	p := &failing{}
	f.relay(p)
	before := f.commit(3)
	waitFor(t, p, len(before))

	_, bucket := events.Names(f.prefix)
	kv, err := f.conn.JS.KeyValue(testenv.Context(t), bucket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testenv.Context(t))
	stolen := make(chan struct{})
	go func() { // another process holding the lease, alive
		defer close(stolen)
		for ctx.Err() == nil {
			if _, err := kv.Put(ctx, "leader", []byte("another-process")); err != nil && ctx.Err() == nil {
				t.Errorf("put lease: %v", err)
			}
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}()
	time.Sleep(f.lease) // the holder notices within TTL/5
	during := make([]schemas.RegistryEvent, 3)
	for i := range during {
		during[i] = schemas.RegistryEvent{ID: fmt.Sprintf("during-%d", i), Type: schemas.RegistryModelCreated, Model: "m1", At: time.Unix(1_800_000_400, 0).UTC()}
		f.outbox.Notify(context.Background(), during[i])
	}
	time.Sleep(time.Second)
	if _, got, _ := p.snapshot(); len(got) != len(before) {
		t.Fatalf("the relay published %d events after its lease was taken", len(got)-len(before))
	}
	cancel()
	<-stolen
	got := waitFor(t, p, len(before)+len(during))
	if want := append(ids(before), ids(during)...); fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Fatalf("produced %v, want %v", ids(got), want)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
