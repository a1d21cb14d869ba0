package predlog_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/serving/predlog"
)

type producer struct {
	mu   sync.Mutex
	down bool
	got  int
}

func (p *producer) Produce(_ context.Context, msgs ...kafkax.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return errors.New("kafka: connection refused")
	}
	p.got += len(msgs)
	return nil
}

func (p *producer) count() int { p.mu.Lock(); defer p.mu.Unlock(); return p.got }

func TestPublishNeverBlocksAndDropsAreCountedWhileKafkaIsDown(t *testing.T) {
	prod := &producer{down: true}
	reg := prometheus.NewRegistry()
	l := predlog.New(prod, 100, 10, zap.NewNop(), reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	start := time.Now()
	for i := 0; i < 1000; i++ {
		l.Publish(&schemas.Prediction{RequestID: "r", Model: "fraud"})
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("1000 publishes took %v with Kafka down", d)
	}
	dropped := testutil.ToFloat64(mustCounter(t, reg, "serving_prediction_log_dropped_total"))
	if dropped < 800 {
		t.Fatalf("%v dropped of 1000 into a buffer of 100", dropped)
	}
	prod.mu.Lock()
	prod.down = false
	prod.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for prod.count()+int(dropped) < 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("published %d + dropped %v, want 1000 once Kafka is back", prod.count(), dropped)
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.Publish(&schemas.Prediction{RequestID: "last"})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if prod.count()+int(dropped) != 1001 {
		t.Fatalf("the record published just before shutdown was not flushed: %d + %v", prod.count(), dropped)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name}, func() float64 { return mf.GetMetric()[0].GetCounter().GetValue() })
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
