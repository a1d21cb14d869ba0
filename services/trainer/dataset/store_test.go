package dataset_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/features/online"
	"github.com/flywheel-ml/flywheel/services/features/stream"
	"github.com/flywheel-ml/flywheel/services/features/views"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
)

// TestNoLeakageOnTheRealStore: card c-1 pays three times a minute apart; each payment changes
// its features right after it. The training row of the labelled middle payment must hold the
// features from before it — one earlier payment — never the payment itself or the later one.
// The features are computed by the features service's own stream processor into the real
// Redis and ClickHouse, and read back with its point-in-time code.
func TestNoLeakageOnTheRealStore(t *testing.T) {
	ctx := testenv.Context(t)
	conn, _ := testenv.ClickHouse(t)
	if _, err := chx.Migrate(ctx, conn, schemas.ClickHouseMigrations()); err != nil {
		t.Fatal(err)
	}
	redis, prefix := testenv.Redis(t)
	cat, err := views.Load(schemas.FeatureViews())
	if err != nil {
		t.Fatal(err)
	}
	proc, err := stream.New(cat, online.New(redis, prefix), conn, stream.NewStats(conn, time.Hour, zap.NewNop()), prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}

	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	amounts := []float64{10, 200, 3000}
	var msgs []kafka.Message
	var logged [][]any
	for i, amount := range amounts {
		at := base.Add(time.Duration(i) * time.Minute)
		id := fmt.Sprintf("t-%d", i)
		data := fmt.Appendf(nil, `{"transaction_id":%q,"card_id":"c-1","amount":%v,"currency":"EUR","merchant_id":"m-%d","merchant_category":"grocery","country":"DE","channel":"pos","event_time":%q}`,
			id, amount, i, at.Format(time.RFC3339Nano))
		env, _ := json.Marshal(schemas.Event{Stream: "transactions", EventID: id, EventTime: at, Entity: "c-1", SchemaVersion: 1, IngestedAt: at, Data: data})
		msgs = append(msgs, kafka.Message{Topic: schemas.EventsTopic("transactions"), Partition: 0, Offset: int64(i), Value: env})
		logged = append(logged, []any{"transactions", id, at, at.UnixMilli(), "c-1", uint32(1), string(data), at, at.UnixMilli()})
	}
	labelAt := base.Add(48 * time.Hour)
	logged = append(logged, []any{"fraud_labels", "t-1:label", labelAt, labelAt.UnixMilli(), "c-1", uint32(1),
		`{"transaction_id":"t-1","card_id":"c-1","is_fraud":true}`, labelAt, labelAt.UnixMilli()})
	if err := proc.Handle(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := chx.Insert(ctx, conn, "events", []string{"stream", "event_id", "event_time", "event_time_ms", "entity", "schema_version", "payload", "ingested_at", "ingested_at_ms"}, logged); err != nil {
		t.Fatal(err)
	}

	spec := fraudSpec(t)
	events, labels, err := dataset.LoadLogged(ctx, conn, spec, dataset.Window{From: base.Add(-time.Hour), To: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ex, st, err := dataset.Join(spec, events, labels)
	if err != nil || len(ex) != 1 || ex[0].EventID != "t-1" || ex[0].Label != 1 {
		t.Fatalf("join: %+v %+v %v", ex, st, err)
	}
	b, err := dataset.Build(ctx, spec, ex, dataset.NewStoreSource(conn, cat))
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for j, n := range b.Frame.Names {
		col[n] = j
	}
	got := func(name string) float64 { return b.Frame.Cols[col[name]][0] }
	if got("amount") != 200 {
		t.Fatalf("request field amount = %v, want the labelled event's own 200", got("amount"))
	}
	if n := got("card_activity:txn_count_1h"); n != 1 {
		t.Fatalf("txn_count_1h = %v: want 1 (only the payment before); 2 would include the event itself, 3 the future", n)
	}
	if s := got("card_activity:amount_sum_1h"); s != 10 {
		t.Fatalf("amount_sum_1h = %v, want 10 (the earlier payment only)", s)
	}
	if m := got("card_activity:amount_max_24h"); m != 10 {
		t.Fatalf("amount_max_24h = %v, want 10", m)
	}
}
