package triggers_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/trainer/runs"
	"github.com/flywheel-ml/flywheel/services/trainer/triggers"
)

// endAtOnce ends every run it is given as succeeded.
type endAtOnce struct {
	book *runs.Book
	mu   sync.Mutex
	ran  []string
}

func (e *endAtOnce) Execute(_ context.Context, run *runs.Run) error {
	e.mu.Lock()
	e.ran = append(e.ran, run.Trigger.EventID)
	e.mu.Unlock()
	e.book.Update(run.ID, func(r *runs.Run) { r.Stage = runs.Succeeded })
	return nil
}

func driftMessage(t *testing.T, id string, at time.Time) kafka.Message {
	t.Helper()
	b, err := json.Marshal(schemas.DriftEvent{ID: id, Model: "fraud", Kind: "data", Feature: "amount", Method: "psi", DetectedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: schemas.TopicDrift, Key: []byte("fraud"), Value: b}
}

// A drift event folded into a run is done only when its fold is recorded: a failed record
// fails the batch as transient (retried, not committed), and the retry records it, the
// events before it in the batch being duplicates by then.
func TestDriftHandlerRecordsEveryFoldBeforeTheBatchIsDone(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	book := runs.NewBook(map[string]time.Duration{"fraud": 10 * time.Minute}, 100, func() time.Time { return at })
	exec := &endAtOnce{book: book}
	reg := prometheus.NewRegistry()
	in := triggers.New(context.Background(), book, exec, zap.NewNop(), reg)
	fail := errors.New("registry down")
	var folds [][]string // what each successful record held
	in.OnFolded(func(_ context.Context, run *runs.Run) error {
		r, _ := book.Get(run.ID)
		if len(r.Coalesced) == 0 {
			return nil // nothing to record
		}
		if fail != nil {
			return fail
		}
		var ids []string
		for _, c := range r.Coalesced {
			ids = append(ids, c.EventID)
		}
		folds = append(folds, ids)
		return nil
	})
	handle := in.DriftHandler()
	if err := handle(context.Background(), []kafka.Message{driftMessage(t, "d-1", at)}); err != nil {
		t.Fatal(err)
	}
	in.Wait()
	batch := []kafka.Message{driftMessage(t, "d-1", at), driftMessage(t, "d-2", at.Add(time.Minute)),
		{Value: []byte("not json")}, driftMessage(t, "d-3", at.Add(2*time.Minute))}
	err := handle(context.Background(), batch)
	if !errors.Is(err, kafkax.ErrTransient) || !errors.Is(err, fail) {
		t.Fatalf("a fold not recorded fails the batch as transient: %v", err)
	}
	fail = nil
	if err := handle(context.Background(), batch); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	in.Wait()
	if len(exec.ran) != 1 || exec.ran[0] != "d-1" {
		t.Fatalf("one run, for d-1: %v", exec.ran)
	}
	if len(folds) == 0 || !slices.Equal(folds[len(folds)-1], []string{"d-2", "d-3"}) {
		t.Fatalf("the last record holds every coalesced event: %v", folds)
	}
	for outcome, want := range map[string]float64{"started": 1, "duplicate": 3, "coalesced": 2} {
		if got := count(t, reg, outcome); got != want {
			t.Errorf("drift events %s: %v, want %v", outcome, got, want)
		}
	}
}

func count(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "flywheel_trainer_retrain_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["trigger"] == "drift" && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// A manual request never asks for a fold record, and joins the run in progress.
func TestManualRequestsDoNotRecordFolds(t *testing.T) {
	book := runs.NewBook(map[string]time.Duration{"fraud": time.Minute}, 100, time.Now)
	block := make(chan struct{})
	in := triggers.New(context.Background(), book, executorFunc(func(context.Context, *runs.Run) error { <-block; return nil }), zap.NewNop(), nil)
	in.OnFolded(func(context.Context, *runs.Run) error { t.Error("a manual request recorded a fold"); return nil })
	a, err := in.Request("fraud", runs.Trigger{Kind: runs.Manual})
	if err != nil || !a.Started {
		t.Fatalf("%+v %v", a, err)
	}
	if j, err := in.Request("fraud", runs.Trigger{Kind: runs.Manual}); err != nil || j.Outcome != "joined" {
		t.Fatalf("%+v %v", j, err)
	}
	close(block)
	in.Wait()
}

type executorFunc func(context.Context, *runs.Run) error

func (f executorFunc) Execute(ctx context.Context, r *runs.Run) error { return f(ctx, r) }
