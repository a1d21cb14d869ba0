package kafkax_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
)

// produceN writes n messages "m-0".."m-(n-1)" with keys k-(i%7) to topic.
func produceN(t *testing.T, cfg kafkax.Config, topic string, n int) {
	t.Helper()
	p := kafkax.NewProducer(cfg)
	defer p.Close()
	msgs := make([]kafkax.Message, n)
	for i := range msgs {
		msgs[i] = kafkax.Message{Topic: topic, Key: fmt.Appendf(nil, "k-%d", i%7), Value: fmt.Appendf(nil, "m-%d", i)}
	}
	if err := p.Produce(testenv.Context(t), msgs...); err != nil {
		t.Fatal(err)
	}
}

func newConsumer(t *testing.T, cfg kafkax.Config, cc kafkax.ConsumerConfig, h kafkax.Handler) *kafkax.Consumer {
	t.Helper()
	p := kafkax.NewProducer(cfg)
	t.Cleanup(func() { _ = p.Close() })
	c, err := kafkax.NewConsumer(cfg, cc, h, p, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// committed returns the group's committed offsets summed over partitions (offset = next to read).
func committed(t *testing.T, cfg kafkax.Config, group, topic string) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: &kafka.Transport{Dial: (&net.Dialer{}).DialContext}}
	resp, err := client.OffsetFetch(testenv.Context(t), &kafka.OffsetFetchRequest{GroupID: group,
		Topics: map[string][]int{topic: {0, 1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, p := range resp.Topics[topic] {
		if p.CommittedOffset > 0 {
			sum += p.CommittedOffset
		}
	}
	return sum
}

type seen struct {
	mu   sync.Mutex
	vals map[string]int
}

func (s *seen) add(batch []kafka.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vals == nil {
		s.vals = map[string]int{}
	}
	for _, m := range batch {
		s.vals[string(m.Value)]++
	}
}

func (s *seen) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.vals)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func run(c *kafkax.Consumer) (cancel func() error) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() error { stop(); return <-done }
}

func TestEnsureTopicsIsIdempotent(t *testing.T) {
	cfg := testenv.Kafka(t)
	admin := kafkax.NewAdmin(cfg)
	defer admin.Close()
	topic := testenv.Unique(t, "topic")
	for range 2 {
		if err := admin.EnsureTopics(testenv.Context(t), topic); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.Check(testenv.Context(t)); err != nil {
		t.Fatal(err)
	}
	topics, err := admin.Topics(testenv.Context(t))
	if err != nil || !slices.Contains(topics, topic) {
		t.Fatalf("topic %s not listed: %v %v", topic, topics, err)
	}
	if err := admin.DeleteTopics(testenv.Context(t), topic); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted topic to disappear", func() bool {
		topics, _ = admin.Topics(testenv.Context(t))
		return !slices.Contains(topics, topic)
	})
}

func TestConsumeCommitsAfterHandlerSucceeds(t *testing.T) {
	cfg := testenv.Kafka(t)
	topic, group := testenv.Unique(t, "raw.t"), testenv.Unique(t, "g")
	testenv.Topics(t, cfg, topic)
	produceN(t, cfg, topic, 300)

	var got seen
	c := newConsumer(t, cfg, kafkax.ConsumerConfig{GroupID: group, Topics: []string{topic}, BatchSize: 64},
		func(_ context.Context, b []kafka.Message) error { got.add(b); return nil })
	stop := run(c)
	waitFor(t, "300 messages", func() bool { return got.distinct() == 300 })
	waitFor(t, "offsets committed", func() bool { return committed(t, cfg, group, topic) == 300 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A second member of the same group gets only what arrives after the commit.
	produceN(t, cfg, topic, 10)
	var again seen
	stop = run(newConsumer(t, cfg, kafkax.ConsumerConfig{GroupID: group, Topics: []string{topic}},
		func(_ context.Context, b []kafka.Message) error { again.add(b); return nil }))
	defer stop()
	waitFor(t, "10 new messages", func() bool { return again.distinct() == 10 })
	time.Sleep(300 * time.Millisecond)
	if n := again.distinct(); n != 10 {
		t.Fatalf("committed messages were delivered again: %d distinct", n)
	}
}

// A consumer that dies while its batch is in flight commits nothing of it; the next member of
// the group gets the whole batch again. Shutdown commits nothing that was not processed.
func TestUncommittedBatchIsRedelivered(t *testing.T) {
	cfg := testenv.Kafka(t)
	topic, group := testenv.Unique(t, "raw.t"), testenv.Unique(t, "g")
	testenv.Topics(t, cfg, topic)
	produceN(t, cfg, topic, 50)

	inFlight := make(chan struct{})
	var once sync.Once
	c := newConsumer(t, cfg, kafkax.ConsumerConfig{GroupID: group, Topics: []string{topic}, BatchSize: 1000,
		BatchWait: 500 * time.Millisecond, DrainTimeout: 50 * time.Millisecond},
		func(ctx context.Context, b []kafka.Message) error {
			once.Do(func() { close(inFlight) })
			<-ctx.Done() // the process "dies" before the effects are durable
			return ctx.Err()
		})
	stop := run(c)
	<-inFlight
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := committed(t, cfg, group, topic); n != 0 {
		t.Fatalf("a batch that never succeeded committed %d offsets", n)
	}

	var got seen
	stop = run(newConsumer(t, cfg, kafkax.ConsumerConfig{GroupID: group, Topics: []string{topic}},
		func(_ context.Context, b []kafka.Message) error { got.add(b); return nil }))
	defer stop()
	waitFor(t, "all 50 messages redelivered", func() bool { return got.distinct() == 50 })
	waitFor(t, "offsets committed", func() bool { return committed(t, cfg, group, topic) == 50 })
}

func TestPoisonMessageIsDeadLetteredWithReason(t *testing.T) {
	cfg := testenv.Kafka(t)
	stream := testenv.Unique(t, "s")
	topic, dlq, group := schemas.RawTopic(stream), schemas.DLQTopic(stream), testenv.Unique(t, "g")
	testenv.Topics(t, cfg, topic, dlq)
	produceN(t, cfg, topic, 40) // m-13 is the poison

	var got seen
	var poisonTries sync.Map
	c := newConsumer(t, cfg, kafkax.ConsumerConfig{GroupID: group, Topics: []string{topic}, MaxAttempts: 3,
		RetryBackoff: time.Millisecond},
		func(_ context.Context, b []kafka.Message) error {
			for _, m := range b {
				if string(m.Value) == "m-13" {
					n, _ := poisonTries.LoadOrStore("n", new(int))
					*(n.(*int))++
					return errors.New("cannot parse m-13")
				}
			}
			got.add(b)
			return nil
		})
	stop := run(c)
	defer stop()
	waitFor(t, "39 good messages", func() bool { return got.distinct() == 39 })
	waitFor(t, "all offsets committed", func() bool { return committed(t, cfg, group, topic) == 40 })

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: dlq, Partition: partitionOf(t, cfg, topic, "m-13")})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	var rec schemas.DLQRecord
	if err := json.Unmarshal(m.Value, &rec); err != nil {
		t.Fatal(err)
	}
	orig, _ := rec.OriginalBytes()
	if string(orig) != "m-13" || rec.Stream != stream || !strings.Contains(rec.Reasons[0], "cannot parse m-13") ||
		rec.Source == nil || rec.Source.Topic != topic || rec.Source.Attempts != 3 {
		t.Fatalf("unexpected dead letter %+v", rec)
	}
	if string(m.Key) != "k-6" {
		t.Fatalf("dead letter must keep the key, got %q", m.Key)
	}
}

func partitionOf(t *testing.T, cfg kafkax.Config, topic, value string) int {
	t.Helper()
	for p := range 3 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: topic, Partition: p})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				break
			}
			if string(m.Value) == value {
				cancel()
				r.Close()
				return p
			}
		}
		cancel()
		r.Close()
	}
	t.Fatalf("%s not found in %s", value, topic)
	return -1
}

func TestTransientFailuresAreRetriedNotDeadLettered(t *testing.T) {
	cfg := testenv.Kafka(t)
	stream := testenv.Unique(t, "s")
	topic, group := schemas.RawTopic(stream), testenv.Unique(t, "g")
	testenv.Topics(t, cfg, topic, schemas.DLQTopic(stream))
	produceN(t, cfg, topic, 5)
	var got seen
	failures := 0
	reg := prometheus.NewRegistry()
	p := kafkax.NewProducer(cfg)
	defer p.Close()
	c, err := kafkax.NewConsumer(cfg, kafkax.ConsumerConfig{GroupID: group, Topics: []string{topic}, MaxAttempts: 2,
		RetryBackoff: time.Millisecond},
		func(_ context.Context, b []kafka.Message) error {
			if failures < 6 {
				failures++
				return kafkax.Transient(errors.New("clickhouse is down"))
			}
			got.add(b)
			return nil
		}, p, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(c)
	defer stop()
	waitFor(t, "5 messages after the outage", func() bool { return got.distinct() == 5 })
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "flywheel_consumer_dead_lettered_total" && len(mf.GetMetric()) > 0 {
			t.Fatalf("transient failures were dead-lettered")
		}
	}
}

func TestProducerKeepsAKeyOnOnePartition(t *testing.T) {
	cfg := testenv.Kafka(t)
	topic := testenv.Unique(t, "keys")
	testenv.Topics(t, cfg, topic)
	produceN(t, cfg, topic, 70)
	partitions := map[string]map[int]bool{}
	for p := range 3 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: topic, Partition: p})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				break
			}
			if partitions[string(m.Key)] == nil {
				partitions[string(m.Key)] = map[int]bool{}
			}
			partitions[string(m.Key)][p] = true
		}
		cancel()
		r.Close()
	}
	if len(partitions) != 7 {
		t.Fatalf("want 7 keys, got %d", len(partitions))
	}
	for k, ps := range partitions {
		if len(ps) != 1 {
			t.Errorf("key %s spread over partitions %v", k, ps)
		}
	}
}
