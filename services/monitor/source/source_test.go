package source_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/monitor/landing"
	"github.com/flywheel-ml/flywheel/services/monitor/source"
)

// TestSecondCountsAndWindowsOnClickHouse: on the real ClickHouse, predictions landed twice
// (a redelivered batch) count once per second, shadow ones and other versions not at all,
// seconds without any are left out; Windows lists evaluated windows after a time.
func TestSecondCountsAndWindowsOnClickHouse(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	if _, err := chx.Migrate(ctx, conn, schemas.ClickHouseMigrations()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var batch []kafka.Message
	add := func(id string, version int, at time.Time, shadow bool) {
		b, _ := json.Marshal(schemas.Prediction{RequestID: id, Model: "fraud", Version: version, Entity: "c-1",
			Features: map[string]any{"amount": 1.0}, Output: json.RawMessage(`{"score":0.1}`), Score: 0.1, Shadow: shadow, TS: at})
		batch = append(batch, kafka.Message{Value: b})
	}
	for i := range 5 {
		add(fmt.Sprint("a", i), 1, t0.Add(time.Duration(i)*100*time.Millisecond), false) // second 0: 5
	}
	for i := range 3 {
		add(fmt.Sprint("b", i), 1, t0.Add(3*time.Second+time.Duration(i)*time.Millisecond), false) // second 3: 3
	}
	add("s", 1, t0.Add(3*time.Second), true)   // shadow
	add("v2", 2, t0.Add(3*time.Second), false) // another version
	add("late", 1, t0.Add(9*time.Second), false)
	lander := landing.New(conn, zap.NewNop(), nil)
	for range 2 { // landed twice: counted once
		if err := lander.Handle(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	src := source.New(conn)
	got, err := src.SecondCounts(ctx, "fraud", 1, t0, t0.Add(9*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint([]source.SecondCount{{Second: t0, N: 5}, {Second: t0.Add(3 * time.Second), N: 3}}) {
		t.Fatalf("per second: %v", got)
	}
	if err := chx.Insert(ctx, conn, "drift_metrics", []string{"model", "version", "kind", "feature", "method", "window_start", "window_end", "n", "score", "threshold", "drifted", "computed_at"},
		[][]any{
			{"fraud", uint32(1), "data", "", "verdict", t0, t0.Add(4 * time.Second), uint64(8), 0.0, 1.0, uint8(0), t0},
			{"fraud", uint32(1), "data", "amount", "psi", t0, t0.Add(4 * time.Second), uint64(8), 0.0, 1.0, uint8(0), t0},
			{"fraud", uint32(1), "data", "", "verdict", t0.Add(4 * time.Second), t0.Add(10 * time.Second), uint64(8), 0.0, 1.0, uint8(0), t0},
		}); err != nil {
		t.Fatal(err)
	}
	spans, err := src.Windows(ctx, "fraud", 1, "data", t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := []source.Span{{Start: t0, End: t0.Add(4 * time.Second)}, {Start: t0.Add(4 * time.Second), End: t0.Add(10 * time.Second)}}
	if fmt.Sprint(spans) != fmt.Sprint(want) {
		t.Fatalf("windows: %v, want %v", spans, want)
	}
	if spans, _ := src.Windows(ctx, "fraud", 1, "data", t0.Add(4*time.Second)); len(spans) != 1 {
		t.Fatalf("windows after the first one's end: %v", spans)
	}
}
