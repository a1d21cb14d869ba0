package evaluate_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/ml/linear"
	"github.com/flywheel-ml/flywheel/ml/profile"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/monitor/evaluate"
	"github.com/flywheel-ml/flywheel/services/monitor/reference"
	"github.com/flywheel-ml/flywheel/services/monitor/source"
)

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// fakeLog holds predictions by minute and the rows written, like ClickHouse would.
type fakeLog struct {
	perMinute map[int64]int  // minute → predictions
	drifted   map[int64]bool // minute → the detector says amount drifted
	scores    map[string]evaluate.Score
	windows   map[string]time.Time
	events    map[string]schemas.DriftEvent
	// landedUpTo is the newest prediction landed (zero: everything)
	landedUpTo time.Time
}

func newFakeLog() *fakeLog {
	return &fakeLog{perMinute: map[int64]int{}, drifted: map[int64]bool{}, scores: map[string]evaluate.Score{},
		windows: map[string]time.Time{}, events: map[string]schemas.DriftEvent{}}
}

func (f *fakeLog) Served(_ context.Context, start, end time.Time) ([]source.Served, error) {
	last := time.Time{}
	if !f.landedUpTo.IsZero() {
		last = f.landedUpTo
	}
	return []source.Served{{Model: "fraud", Version: 1, N: 1, Last: last}}, nil
}

// Window returns the predictions of the minutes that start in [start, end); a prediction's
// amount is its minute.
func (f *fakeLog) Window(_ context.Context, _ string, _ int, start, end time.Time) ([]source.Prediction, error) {
	var out []source.Prediction
	for m := (start.Unix() + 59) / 60; m*60 < end.Unix(); m++ {
		for range f.perMinute[m] {
			out = append(out, source.Prediction{Features: map[string]any{"amount": float64(m)}, Score: 0.1})
		}
	}
	return out, nil
}

// SecondCounts puts each minute's predictions in its first second.
func (f *fakeLog) SecondCounts(_ context.Context, _ string, _ int, start, end time.Time) ([]source.SecondCount, error) {
	var out []source.SecondCount
	for m := (start.Unix() + 59) / 60; m*60 < end.Unix(); m++ {
		if n := f.perMinute[m]; n > 0 {
			out = append(out, source.SecondCount{Second: time.Unix(m*60, 0).UTC(), N: n})
		}
	}
	return out, nil
}

func (f *fakeLog) Windows(context.Context, string, int, string, time.Time) ([]source.Span, error) {
	return nil, nil
}

func (f *fakeLog) Labelled(context.Context, string, int, time.Time, time.Time, string, string, string, time.Duration) ([]source.Labelled, error) {
	return nil, nil
}

func (f *fakeLog) LastWindowEnd(_ context.Context, _ string, _ int, kind string) (time.Time, error) {
	var last time.Time
	for k, end := range f.windows {
		if k[:len(kind)] == kind && end.After(last) {
			last = end
		}
	}
	return last, nil
}

func (f *fakeLog) WriteScores(_ context.Context, w evaluate.Window, scores []evaluate.Score) error {
	for _, s := range scores {
		key := fmt.Sprintf("%s/%s/%s/%d", s.Kind, s.Feature, s.Method, w.End.Unix())
		f.scores[key] = s
		f.windows[s.Kind+key] = w.End
	}
	return nil
}

func (f *fakeLog) WritePerformance(context.Context, evaluate.Window, map[string]float64) error {
	return nil
}

func (f *fakeLog) Verdicts(_ context.Context, _ string, _ int, kind string, end time.Time, n int) ([]bool, error) {
	var ends []int64
	for k, s := range f.scores {
		var e int64
		fmt.Sscanf(k[len(k)-10:], "%d", &e)
		if s.Kind == kind && s.Method == "verdict" && e <= end.Unix() {
			ends = append(ends, e)
		}
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i] > ends[j] })
	var out []bool
	for _, e := range ends[:min(n, len(ends))] {
		out = append(out, f.scores[fmt.Sprintf("%s//verdict/%d", kind, e)].Drifted)
	}
	return out, nil
}

func (f *fakeLog) LastEvent(_ context.Context, _ string, kind string) (time.Time, error) {
	var last time.Time
	for _, ev := range f.events {
		if string(ev.Kind) == kind && ev.Window.End.After(last) {
			last = ev.Window.End
		}
	}
	return last, nil
}

func (f *fakeLog) RecordEvent(_ context.Context, ev schemas.DriftEvent) error {
	if _, ok := f.events[ev.ID]; !ok {
		f.events[ev.ID] = ev
	}
	return nil
}

type detector struct{ log *fakeLog }

func (d detector) Detect(ref *reference.Reference, rows [][]float64, _ []float64) []evaluate.Score {
	minute := int64(rows[0][0])
	return []evaluate.Score{{Kind: evaluate.Data, Feature: "amount", Method: "ks", Score: 0.3, Threshold: 0.1, PValue: 0.001, Drifted: d.log.drifted[minute]}}
}

type refs struct{}

func (refs) Get(context.Context, string, int) (*reference.Reference, error) {
	a := &artifact.Artifact{Model: "fraud", Task: "binary", Algorithm: artifact.Logistic, Threshold: 0.5,
		Signature: []artifact.Feature{{Name: "amount", Kind: "numeric"}},
		Linear:    &linear.Model{Kind: linear.Logistic, Weights: []float64{1}, Inputs: []linear.Input{{Scale: 1}}}, Profile: &profile.Profile{}}
	return reference.New("fraud", 1, a), nil
}

func TestEventsNeedPersistenceRespectTheCooldownAndSurviveARestart(t *testing.T) {
	log := newFakeLog()
	now := t0
	cfg := evaluate.Config{Window: time.Minute, Grace: 10 * time.Second, MinN: 500, Lookback: time.Hour, Persist: 2, Of: 3,
		Cooldown: 10 * time.Minute, LabelsFor: func(string) (evaluate.Labels, bool) { return evaluate.Labels{}, false }}
	newEval := func() *evaluate.Evaluator {
		return evaluate.New(cfg, log, refs{}, detector{log}, log, func() time.Time { return now }, zap.NewNop())
	}
	e := newEval()
	minute := func(m int) int64 { return t0.Unix()/60 + int64(m) }
	for m := 0; m < 30; m++ {
		log.perMinute[minute(m)] = 600
	}
	log.perMinute[minute(3)] = 100 // too few: no verdict
	for _, m := range []int{5, 7, 8, 9, 10, 11, 25, 26} {
		log.drifted[minute(m)] = true
	}
	step := func(until int) {
		for ; now.Before(t0.Add(time.Duration(until) * time.Minute)); now = now.Add(15 * time.Second) {
			if err := e.Tick(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	step(9)       // minute 5 alone (1 of 3), then 7 (2 of 3: 5, 6, 7) → event at the end of minute 7
	e = newEval() // a restart
	step(30)      // 8–11 inside the cooldown: none; 25, 26 → the second event
	var ends []string
	for _, ev := range log.events {
		ends = append(ends, ev.Window.End.Format("15:04"))
	}
	sort.Strings(ends)
	if fmt.Sprint(ends) != "[10:08 10:27]" {
		t.Fatalf("events at window ends %v, want [10:08 10:27]", ends)
	}
	if s, ok := log.scores[fmt.Sprintf("data//n/%d", t0.Add(4*time.Minute).Unix())]; !ok || s.Score != 100 {
		t.Fatalf("the small window has no 'n' row: %+v", s)
	}
	// recomputing a window yields the same event id
	a := evaluate.Event(evaluate.Window{Model: "fraud", Version: 1, End: t0}, evaluate.Data, []evaluate.Score{{Feature: "amount", Score: 1, Threshold: 0.5}}, t0)
	b := evaluate.Event(evaluate.Window{Model: "fraud", Version: 1, End: t0}, evaluate.Data, []evaluate.Score{{Feature: "amount", Score: 2, Threshold: 0.5}}, t0.Add(time.Hour))
	if a.ID != b.ID || math.IsNaN(a.Score) {
		t.Fatal("the event id depends on more than the window")
	}
}

// TestCountWindows: with Count set, a window closes at the end of the first second by which
// it holds Count predictions; a restarted evaluator finds the same windows, and a window
// still filling is not evaluated.
func TestCountWindows(t *testing.T) {
	log := newFakeLog()
	now := t0
	cfg := evaluate.Config{Window: time.Minute, Count: 1000, Grace: 10 * time.Second, MinN: 500, Lookback: time.Hour, Persist: 2, Of: 3,
		Cooldown: 10 * time.Minute, LabelsFor: func(string) (evaluate.Labels, bool) { return evaluate.Labels{}, false }}
	newEval := func() *evaluate.Evaluator {
		return evaluate.New(cfg, log, refs{}, detector{log}, log, func() time.Time { return now }, zap.NewNop())
	}
	e := newEval()
	for m := 0; m < 21; m++ {
		log.perMinute[t0.Unix()/60+int64(m)] = 600
	}
	step := func(until time.Duration) {
		for ; now.Before(t0.Add(until)); now = now.Add(7 * time.Second) {
			if err := e.Tick(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	step(7 * time.Minute)
	e = newEval() // a restart
	step(25 * time.Minute)
	var ends []string
	for k, s := range log.scores {
		if s.Kind == evaluate.Data && s.Method == "verdict" {
			var end int64
			fmt.Sscanf(k[len(k)-10:], "%d", &end)
			ends = append(ends, time.Unix(end, 0).UTC().Format("04:05"))
		}
	}
	sort.Strings(ends)
	// 600 a minute: each window takes two minutes' predictions and ends a second after the
	// second minute began; the last minute's 600 wait for more
	want := "[01:01 03:01 05:01 07:01 09:01 11:01 13:01 15:01 17:01 19:01]"
	if fmt.Sprint(ends) != want {
		t.Fatalf("count windows end at %v, want %s", ends, want)
	}
}

// TestWindowsWaitForTheirPredictionsToLand: while the landing lags (after a restart), a
// window whose end the landed predictions have not reached is not scored; it is scored, in
// full, once they have.
func TestWindowsWaitForTheirPredictionsToLand(t *testing.T) {
	log := newFakeLog()
	now := t0.Add(10 * time.Minute)
	cfg := evaluate.Config{Window: time.Minute, Grace: 10 * time.Second, MinN: 500, Lookback: time.Hour, Persist: 2, Of: 3,
		Cooldown: 10 * time.Minute, LabelsFor: func(string) (evaluate.Labels, bool) { return evaluate.Labels{}, false }}
	e := evaluate.New(cfg, log, refs{}, detector{log}, log, func() time.Time { return now }, zap.NewNop())
	for m := 0; m < 10; m++ {
		log.perMinute[t0.Unix()/60+int64(m)] = 600
	}
	log.landedUpTo = t0.Add(6*time.Minute + 30*time.Second)
	if err := e.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	last, _ := log.LastWindowEnd(context.Background(), "fraud", 1, evaluate.Data)
	if !last.Equal(t0.Add(6 * time.Minute)) {
		t.Fatalf("with predictions landed up to 10:06:30 the last window scored ends %v, want 10:06", last)
	}
	log.landedUpTo = now
	if err := e.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if last, _ = log.LastWindowEnd(context.Background(), "fraud", 1, evaluate.Data); !last.Equal(t0.Add(9 * time.Minute)) {
		t.Fatalf("once landed the last window scored ends %v, want 10:09", last)
	}
}
