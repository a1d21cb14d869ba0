package predict_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/online"
	"github.com/flywheel-ml/flywheel/services/serving/internal/testmodel"
	"github.com/flywheel-ml/flywheel/services/serving/model"
	"github.com/flywheel-ml/flywheel/services/serving/predict"
	"github.com/flywheel-ml/flywheel/services/serving/routing"
)

// store answers txn_count_1h = 4 for card c1 and nothing for other cards.
type store struct {
	calls int
	down  bool
}

func (s *store) Lookup(_ context.Context, refs []online.Ref, entities []string, _ time.Time) ([][]online.Value, error) {
	s.calls++
	if s.down {
		return nil, errors.New("dial tcp: connection refused")
	}
	out := make([][]online.Value, len(entities))
	for i, e := range entities {
		out[i] = make([]online.Value, len(refs))
		for j := range refs {
			out[i][j] = online.Value{Value: 0.0, Status: agg.NotFound}
			if e == "c1" {
				out[i][j] = online.Value{Value: 4.0, Status: agg.Present}
			}
		}
	}
	return out, nil
}

type logSink struct {
	mu      sync.Mutex
	records []*schemas.Prediction
}

func (l *logSink) Publish(p *schemas.Prediction) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, p)
}

func served(t *testing.T, version int, bias float64) *model.Served {
	t.Helper()
	a := testmodel.Fraud(bias)
	plan, err := model.NewPlan(a.Signature, testmodel.ShippedViews())
	if err != nil {
		t.Fatal(err)
	}
	return model.NewServed("fraud", version, fmt.Sprint("digest", version), a, plan)
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

func TestBatchIsOneLookupWithFetchedDefaultedAndSuppliedValues(t *testing.T) {
	table := routing.NewTable(nil)
	if _, err := table.Set("fraud", routing.Champion, served(t, 3, -2)); err != nil {
		t.Fatal(err)
	}
	st, sink := &store{}, &logSink{}
	svc := predict.New(table, st, sink, time.Now, nil)
	res, err := svc.Predict(context.Background(), &predict.Request{Model: "fraud", RequestID: "r1", Instances: []model.Instance{
		{Fields: map[string]any{"card_id": "c1", "amount": 100.0, "channel": "web", "transaction_id": "t1"}},
		{Fields: map[string]any{"card_id": "c2", "amount": 100.0, "channel": "atm"}},
		{Fields: map[string]any{"card_id": "c2", "amount": 100.0, "channel": "pos"}, Supplied: map[string]any{"card_activity:txn_count_1h": 10.0}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if st.calls != 1 {
		t.Fatalf("%d lookups for a batch of 3, want 1", st.calls)
	}
	want := []float64{
		sigmoid(-2 + 1 + 1 + 0.5*4), // c1: web is code 0 (weight 1), 4 fetched
		sigmoid(-2 + 1 + 0.5*0),     // c2: atm unseen (no weight), default 0
		sigmoid(-2 + 1 + 0.5*10),    // supplied wins; pos is not one-hot encoded in this model
	}
	for i, p := range res.Predictions {
		if math.Abs(p.Output.Score-want[i]) > 1e-12 || p.Version != 3 || p.Alias != routing.Champion {
			t.Errorf("instance %d: %+v, want score %v from version 3", i, p, want[i])
		}
	}
	if len(sink.records) != 3 {
		t.Fatalf("%d records logged, want 3", len(sink.records))
	}
	r0, r1, r2 := sink.records[0], sink.records[1], sink.records[2]
	if r0.RequestID != "r1/0" || r0.Entity != "c1" || r0.Sources["card_activity:txn_count_1h"] != model.Fetched ||
		r0.Features["channel"] != "web" || r0.Request["transaction_id"] != "t1" {
		t.Errorf("record 0: %+v", r0)
	}
	if r1.Sources["card_activity:txn_count_1h"] != model.Defaulted || r2.Sources["card_activity:txn_count_1h"] != model.Supplied {
		t.Errorf("sources: %v / %v", r1.Sources, r2.Sources)
	}
}

func TestErrorsSayWhatIsWrong(t *testing.T) {
	table := routing.NewTable(map[string]routing.Policy{"lenient": {AllowDefaults: true}})
	table.Set("fraud", routing.Champion, served(t, 1, 0))
	st := &store{}
	svc := predict.New(table, st, &logSink{}, time.Now, nil)
	ctx := context.Background()
	one := func(fields map[string]any) *predict.Request {
		return &predict.Request{Model: "fraud", RequestID: "r", Instances: []model.Instance{{Fields: fields}}}
	}
	var bad *predict.BadInput
	if _, err := svc.Predict(ctx, &predict.Request{Model: "nope", Instances: []model.Instance{{}}}); !errors.Is(err, predict.ErrUnknownModel) {
		t.Errorf("unknown model: %v", err)
	}
	if _, err := svc.Predict(ctx, one(map[string]any{"amount": 1.0})); !errors.As(err, &bad) || bad.Msg != `the instance has no "card_id" (the entity key)` {
		t.Errorf("no entity key: %v", err)
	}
	if _, err := svc.Predict(ctx, one(map[string]any{"card_id": "c", "amount": "lots"})); !errors.As(err, &bad) {
		t.Errorf("amount not a number: %v", err)
	}
	if _, err := svc.Predict(ctx, &predict.Request{Model: "fraud", Pin: "9", Instances: []model.Instance{{Fields: map[string]any{"card_id": "c"}}}}); !errors.Is(err, routing.ErrNoSuchVersion) {
		t.Errorf("pinned to a version not served: %v", err)
	}
	st.down = true
	if _, err := svc.Predict(ctx, one(map[string]any{"card_id": "c", "amount": 1.0})); !errors.Is(err, predict.ErrStoreDown) {
		t.Errorf("store down: %v", err)
	}
	a := testmodel.Fraud(0)
	a.Model = "lenient"
	plan, _ := model.NewPlan(a.Signature, testmodel.ShippedViews())
	table.Set("lenient", routing.Champion, model.NewServed("lenient", 1, "d", a, plan))
	res, err := svc.Predict(ctx, &predict.Request{Model: "lenient", Instances: []model.Instance{{Fields: map[string]any{"card_id": "c", "amount": 1.0}}}})
	if err != nil || res.Predictions[0].Output.Score != sigmoid(0.01) {
		t.Errorf("store down with defaults allowed: %+v, %v", res, err)
	}
}

func TestCanaryIsStickyAndShadowIsLoggedNotReturned(t *testing.T) {
	table := routing.NewTable(map[string]routing.Policy{"fraud": {Canary: 0.3}})
	table.Set("fraud", routing.Challenger, served(t, 2, 1))
	table.Set("fraud", routing.Champion, served(t, 1, 0))
	sink := &logSink{}
	reg := prometheus.NewRegistry()
	svc := predict.New(table, &store{}, sink, time.Now, reg)
	first := map[string]int{}
	challenger := 0
	for round := 0; round < 3; round++ {
		for c := 0; c < 1000; c++ {
			card := fmt.Sprintf("card-%d", c)
			res, err := svc.Predict(context.Background(), &predict.Request{Model: "fraud", RequestID: "x",
				Instances: []model.Instance{{Fields: map[string]any{"card_id": card, "amount": 1.0}}}})
			if err != nil {
				t.Fatal(err)
			}
			v := res.Predictions[0].Version
			if round == 0 {
				first[card] = v
				if v == 2 {
					challenger++
				}
			} else if first[card] != v {
				t.Fatalf("%s went to version %d, then %d", card, first[card], v)
			}
		}
	}
	if challenger < 250 || challenger > 350 {
		t.Errorf("challenger answered %d of 1000 cards at a 0.3 canary", challenger)
	}
	// raising the share only moves more cards over
	if err := table.SetPolicy("fraud", routing.Policy{Canary: 0.6, Shadow: 1}); err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	sink.records = nil
	sink.mu.Unlock()
	byChampion := 0
	for card, v := range first {
		res, _ := svc.Predict(context.Background(), &predict.Request{Model: "fraud", RequestID: card,
			Instances: []model.Instance{{Fields: map[string]any{"card_id": card, "amount": 1.0}}}})
		if v == 2 && res.Predictions[0].Version != 2 {
			t.Fatalf("%s left the challenger when its share grew", card)
		}
		if res.Predictions[0].Version == 1 {
			byChampion++
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		sink.mu.Lock()
		shadows := 0
		for _, r := range sink.records {
			if r.Shadow {
				shadows++
				if r.Version != 2 || r.RequestID != r.Entity+"#shadow" {
					t.Fatalf("shadow record %+v", r)
				}
			}
		}
		sink.mu.Unlock()
		// every request the champion answered is scored in the shadow (share 1), or skipped
		// and counted when too many shadow scorings were in flight
		skipped := int(testutil.ToFloat64(skippedCounter(t, reg)))
		if shadows > 0 && shadows+skipped == byChampion {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d shadow predictions logged and %d skipped for %d answered by the champion", shadows, skipped, byChampion)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var _ = artifact.Logistic

func skippedCounter(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "serving_shadow_skipped_total" {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return v })
}
