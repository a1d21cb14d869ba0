package dataset_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/offline"
	"github.com/flywheel-ml/flywheel/services/features/views"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
)

func fraudSpec(t *testing.T) *modelspec.Spec {
	t.Helper()
	specs, err := modelspec.Load(schemas.Models())
	if err != nil {
		t.Fatal(err)
	}
	s := *specs["fraud"]
	s.Training.MinRows = 10
	return &s
}

func tx(id, card string, ms int64, amount float64, category string) dataset.LoggedEvent {
	return dataset.LoggedEvent{EventID: id, Entity: card, TimeMS: ms, Payload: fmt.Appendf(nil,
		`{"transaction_id":%q,"card_id":%q,"amount":%v,"merchant_category":%q,"channel":"pos","country":"DE"}`, id, card, amount, category)}
}

func label(id string, ms int64, fraud any) dataset.LoggedEvent {
	b := fmt.Appendf(nil, `{"transaction_id":%q,"is_fraud":%v}`, id, fraud)
	return dataset.LoggedEvent{EventID: id + ":label", TimeMS: ms, Payload: b}
}

func TestJoinPairsLabelsWithTheirEvents(t *testing.T) {
	spec := fraudSpec(t)
	day := int64(86_400_000)
	events := []dataset.LoggedEvent{tx("t2", "c1", 2000, 5, "food"), tx("t1", "c1", 1000, 7, "travel"), tx("t3", "c2", 1000, 1, "food")}
	labels := []dataset.LoggedEvent{
		label("t1", 5*day, true), label("t1", 6*day, false), // newer label wins
		label("t2", 40*day, true),     // beyond the 30d horizon
		label("t3", 2*day, `"maybe"`), // unreadable
		label("t9", 2*day, true),      // names no event in the window
	}
	ex, st, err := dataset.Join(spec, events, labels)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 1 || ex[0].EventID != "t1" || ex[0].Label != 0 || ex[0].Fields["merchant_category"] != "travel" {
		t.Fatalf("examples %+v", ex)
	}
	if st.Labels != 5 || st.Joined != 1 || st.BeyondHorizon != 1 || st.BadLabel != 1 || st.NoEvent != 1 || st.DuplicateLabels != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// fakeSource answers every feature from a function of the row.
type fakeSource struct {
	view  *views.View
	value func(row offline.Row, feature int) agg.Result
}

func (f fakeSource) View(name string) (*views.View, bool) { return f.view, name == f.view.Name }
func (f fakeSource) PointInTime(_ context.Context, _ string, rows []offline.Row, emit offline.Emit) error {
	res := make([]agg.Result, len(f.view.Features))
	for _, r := range rows {
		for i := range res {
			res[i] = f.value(r, i)
		}
		if err := emit(r, res); err != nil {
			return err
		}
	}
	return nil
}

func cardActivity(t *testing.T) *views.View {
	t.Helper()
	cat, err := views.Load(schemas.FeatureViews())
	if err != nil {
		t.Fatal(err)
	}
	v, _ := cat.Get("card_activity")
	return v
}

func examples(n int) []dataset.Example {
	out := make([]dataset.Example, n)
	cats := []string{"travel", "food", "atm"}
	for i := range out {
		out[i] = dataset.Example{EventID: fmt.Sprintf("t%03d", i), Entity: fmt.Sprintf("c%d", i%4), TimeMS: int64(1000 * (i + 1)),
			Fields: map[string]any{"amount": float64(i), "merchant_category": cats[i%3], "channel": "pos", "country": "DE"},
			Label:  float64(i % 2)}
	}
	return out
}

func TestBuildReadsFeaturesJustBeforeThePrediction(t *testing.T) {
	spec := fraudSpec(t)
	v := cardActivity(t)
	var asked []int64
	src := fakeSource{view: v, value: func(r offline.Row, i int) agg.Result {
		if i == 0 {
			asked = append(asked, r.TS)
		}
		if i == 1 && r.Index%5 == 0 {
			return agg.Result{Status: agg.NotFound} // absent: the declared default (0) is used
		}
		return agg.Result{Status: agg.Present, Value: float64(r.Index*10 + i), EventTime: r.TS}
	}}
	ex := examples(20)
	b, err := dataset.Build(context.Background(), spec, ex, src)
	if err != nil {
		t.Fatal(err)
	}
	for i, ts := range asked {
		if ts != ex[i].TimeMS-1 {
			t.Fatalf("row %d read at %d, want its prediction time - 1 ms (%d)", i, ts, ex[i].TimeMS-1)
		}
	}
	f := b.Frame
	if f.Names[0] != "amount" || f.Names[1] != "merchant_category" || f.Names[4] != "card_activity:txn_count_10m" || len(f.Names) != 4+len(spec.Features) {
		t.Fatalf("columns %v", f.Names)
	}
	if got := b.Columns[1].Vocabulary; strings.Join(got, ",") != "atm,food,travel" {
		t.Fatalf("vocabulary %v", got)
	}
	if f.Cols[1][0] != 2 || f.Cols[1][1] != 1 || f.Cols[0][3] != 3 {
		t.Fatalf("encoded request fields %v %v", f.Cols[0][:4], f.Cols[1][:4])
	}
	if f.Cols[4][7] != 70 || f.Cols[5][5] != 0 || f.Cols[5][6] != 61 {
		t.Fatalf("feature values %v / %v", f.Cols[4][:8], f.Cols[5][:8])
	}
	if b.ViewVersions["card_activity"] != v.Version {
		t.Fatalf("view versions %v", b.ViewVersions)
	}
}

func TestBuildFailsLoudlyOnLeakage(t *testing.T) {
	spec := fraudSpec(t)
	src := fakeSource{view: cardActivity(t), value: func(r offline.Row, i int) agg.Result {
		return agg.Result{Status: agg.Present, Value: 1.0, EventTime: r.TS + 1} // the event itself
	}}
	_, err := dataset.Build(context.Background(), spec, examples(20), src)
	if !errors.Is(err, dataset.ErrLeakage) || !strings.Contains(err.Error(), "card_activity:txn_count_10m of event t000") {
		t.Fatalf("want a leakage error naming the feature and event, got %v", err)
	}
}

func TestChecksAndSplit(t *testing.T) {
	spec := fraudSpec(t)
	src := fakeSource{view: cardActivity(t), value: func(r offline.Row, i int) agg.Result {
		return agg.Result{Status: agg.Present, Value: float64(i), EventTime: r.TS}
	}}
	build := func(ex []dataset.Example) *dataset.Built {
		b, err := dataset.Build(context.Background(), spec, ex, src)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ex := examples(40)
	for i := range ex {
		ex[i].Label = 0
		if i%5 == 0 {
			ex[i].Label = 1
		}
	}
	b := build(ex)
	sum, err := dataset.Check(spec, b)
	if err != nil || sum.Rows != 40 || sum.LabelRate != 0.2 {
		t.Fatalf("check: %+v %v", sum, err)
	}
	train, test, err := dataset.Split(spec, b)
	if err != nil || len(train) != 32 || len(test) != 8 || test[0] != 32 {
		t.Fatalf("split: %d/%d %v", len(train), len(test), err)
	}

	for name, mutate := range map[string]func([]dataset.Example) ([]dataset.Example, string){
		"too few rows": func(ex []dataset.Example) ([]dataset.Example, string) { return ex[:5], "5 labelled rows" },
		"one class": func(ex []dataset.Example) ([]dataset.Example, string) {
			for i := range ex {
				ex[i].Label = 0
			}
			return ex, "only one class"
		},
		"label rate": func(ex []dataset.Example) ([]dataset.Example, string) {
			for i := range ex {
				ex[i].Label = 0
				if i%4 != 0 {
					ex[i].Label = 1
				}
			}
			return ex, "label rate 0.7500 outside"
		},
		"missing column": func(ex []dataset.Example) ([]dataset.Example, string) {
			for i := range ex {
				delete(ex[i].Fields, "amount")
			}
			return ex, "column amount is missing in all"
		},
	} {
		ex2, want := mutate(examples(40))
		if name != "one class" && name != "label rate" {
			for i := range ex2 {
				ex2[i].Label = float64(i % 5 / 4)
			}
		}
		_, err := dataset.Check(spec, build(ex2))
		if !errors.Is(err, dataset.ErrUnfit) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", name, err, want)
		}
	}
}
