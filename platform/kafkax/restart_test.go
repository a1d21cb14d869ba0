package kafkax_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/lifecycle"
	"github.com/flywheel-ml/flywheel/platform/retry"
	"github.com/flywheel-ml/flywheel/platform/testenv"
)

// produceRetrying writes messages prefix-0..prefix-(n-1), retrying each batch until the
// broker acknowledges it, as a client that must not lose data does.
func produceRetrying(t *testing.T, p *kafkax.Producer, topic, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i += 10 {
		var msgs []kafkax.Message
		for j := i; j < min(i+10, n); j++ {
			msgs = append(msgs, kafkax.Message{Topic: topic, Key: fmt.Appendf(nil, "k-%d", j%7), Value: fmt.Appendf(nil, "%s-%d", prefix, j)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := retry.Do(ctx, retry.Backoff{Initial: 50 * time.Millisecond, Max: time.Second}, func(ctx context.Context) error {
			return p.Produce(ctx, msgs...)
		}, nil)
		cancel()
		if err != nil {
			t.Fatalf("produce %s-%d..: %v", prefix, i, err)
		}
	}
}

// A broker restart of a few seconds must not end a consumer: it reconnects, rejoins its
// group and consumes what was produced before, during (retried by the client) and after the
// outage, and readiness reports the broker down only while it is down.
func TestConsumerSurvivesBrokerRestart(t *testing.T) {
	broker := testenv.PrivateKafka(t)
	cfg := kafkax.Config{Brokers: []string{broker.Addr()}, Partitions: 3, ReplicationFactor: 1,
		BatchSize: 100, BatchTimeout: 2 * time.Millisecond, DialTimeout: time.Second, MaxMessageBytes: 1 << 20}
	topic, group := testenv.Unique(t, "restart"), testenv.Unique(t, "g")
	admin := kafkax.NewAdmin(cfg)
	defer admin.Close()
	if err := admin.EnsureTopics(testenv.Context(t), topic); err != nil {
		t.Fatal(err)
	}
	producer := kafkax.NewProducer(cfg)
	defer producer.Close()

	var got seen
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	consumer, err := kafkax.NewConsumer(cfg, kafkax.ConsumerConfig{GroupID: group, Topics: []string{topic}},
		func(_ context.Context, batch []kafka.Message) error { got.add(batch); return nil }, producer, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	g := lifecycle.New(log, 10*time.Second)
	g.Go("consumer", consumer.Run)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("consumer group stopped with %v", err)
		}
	}()

	produceRetrying(t, producer, topic, "before", 100)
	waitFor(t, "messages before the restart", func() bool { return got.distinct() == 100 })

	broker.Stop()
	if c, err := net.DialTimeout("tcp", broker.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("broker still listening after Stop")
	}
	if err := admin.Check(context.Background()); err == nil {
		t.Fatal("readiness must fail while the broker is down")
	}
	during := make(chan struct{})
	go func() { defer close(during); produceRetrying(t, producer, topic, "during", 50) }()
	time.Sleep(3 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("consumer group ended during the outage: %v", err)
	default:
	}
	broker.Start()
	<-during
	produceRetrying(t, producer, topic, "after", 100)

	deadline := time.Now().Add(60 * time.Second)
	for got.distinct() < 250 {
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d distinct messages of 250 a minute after the broker came back", got.distinct())
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, "readiness after the restart", func() bool { return admin.Check(context.Background()) == nil })
	select {
	case err := <-done:
		t.Fatalf("consumer group ended: %v", err)
	default:
	}
}
