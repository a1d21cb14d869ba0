package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/offline"
	"github.com/flywheel-ml/flywheel/services/features/views"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
	"github.com/flywheel-ml/flywheel/services/trainer/pipeline"
	"github.com/flywheel-ml/flywheel/services/trainer/runs"
)

// fakeRegistry keeps what a run writes.
type fakeRegistry struct {
	mu        sync.Mutex
	runs      map[string]string // id → status
	tags      map[string]map[string]string
	metrics   map[string][]client.Metric
	artifacts map[string][]byte
	datasets  []client.DatasetVersion
	versions  []client.NewVersion
	aliases   map[string]int
	// coalescedWrites counts writes of the coalesced tag; failCoalesced fails them.
	coalescedWrites int
	failCoalesced   error
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{runs: map[string]string{}, tags: map[string]map[string]string{}, metrics: map[string][]client.Metric{},
		artifacts: map[string][]byte{}, aliases: map[string]int{}}
}

func (f *fakeRegistry) EnsureExperiment(context.Context, string) (string, error) { return "1", nil }
func (f *fakeRegistry) CreateRun(_ context.Context, _, _ string, tags map[string]string) (client.RunInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("run%d", len(f.runs)+1)
	f.runs[id], f.tags[id] = "RUNNING", map[string]string{}
	for k, v := range tags {
		f.tags[id][k] = v
	}
	return client.RunInfo{ID: id, ArtifactURI: "mlflow-artifacts:/1/" + id + "/artifacts"}, nil
}
func (f *fakeRegistry) GetRun(_ context.Context, id string) (client.RunInfo, error) {
	if _, ok := f.runs[id]; !ok {
		return client.RunInfo{}, &client.Error{Status: 404, Code: "RESOURCE_DOES_NOT_EXIST"}
	}
	return client.RunInfo{ID: id, ArtifactURI: "mlflow-artifacts:/1/" + id + "/artifacts"}, nil
}
func (f *fakeRegistry) LogBatch(_ context.Context, id string, m []client.Metric, params, tags map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := tags[pipeline.TagCoalesced]; ok {
		if f.failCoalesced != nil {
			return f.failCoalesced
		}
		f.coalescedWrites++
	}
	f.metrics[id] = append(f.metrics[id], m...)
	for k, v := range tags {
		f.tags[id][k] = v
	}
	return nil
}
func (f *fakeRegistry) EndRun(_ context.Context, id, status string) error {
	f.runs[id] = status
	return nil
}
func (f *fakeRegistry) PutArtifact(_ context.Context, uri, rel string, data []byte) error {
	f.artifacts[uri+"/"+rel] = data
	return nil
}
func (f *fakeRegistry) GetArtifact(_ context.Context, uri, rel string) ([]byte, error) {
	b, ok := f.artifacts[uri+"/"+rel]
	if !ok {
		return nil, &client.Error{Status: 404, Code: "RESOURCE_DOES_NOT_EXIST"}
	}
	return b, nil
}
func (f *fakeRegistry) RecordDataset(_ context.Context, d client.DatasetVersion) (client.DatasetVersion, error) {
	d.ID = "ds-" + d.Digest[:16]
	f.datasets = append(f.datasets, d)
	return d, nil
}
func (f *fakeRegistry) EnsureModel(context.Context, string) error { return nil }
func (f *fakeRegistry) CreateVersion(_ context.Context, model string, v client.NewVersion) (client.Version, error) {
	f.versions = append(f.versions, v)
	return client.Version{Name: model, Version: len(f.versions), Source: v.Source}, nil
}
func (f *fakeRegistry) GetVersion(_ context.Context, model string, version int) (client.Version, error) {
	v := f.versions[version-1]
	return client.Version{Name: model, Version: version, Source: v.Source}, nil
}
func (f *fakeRegistry) Aliases(context.Context, string) (map[string]int, error) {
	out := map[string]int{}
	for k, v := range f.aliases {
		out[k] = v
	}
	return out, nil
}
func (f *fakeRegistry) MoveAlias(_ context.Context, _, alias string, version int, _ string) error {
	f.aliases[alias] = version
	return nil
}

// fakeLearner's model scores a row by its amount, or by minus its amount when inverted; its
// artifact is that one bit.
type fakeLearner struct{ invert bool }

type fakeModel struct{ invert bool }

func (l fakeLearner) Train(_ context.Context, _ *modelspec.Spec, _ *dataset.Built, train []int, _ uint64, progress func(int, map[string]float64)) (pipeline.Model, error) {
	for step := range 3 {
		progress(step, map[string]float64{"train_loss": 1 / float64(step+1)})
	}
	return fakeModel{invert: l.invert}, nil
}
func (l fakeLearner) Load(b []byte) (pipeline.Model, error) {
	return fakeModel{invert: string(b) == "inverted"}, nil
}
func (m fakeModel) Score(b *dataset.Built, rows []int) ([]float64, error) {
	out := make([]float64, len(rows))
	for i, r := range rows {
		out[i] = b.Frame.Cols[0][r] / 100
		if m.invert {
			out[i] = 1 - out[i]
		}
	}
	return out, nil
}
func (m fakeModel) Encode(map[string]float64) ([]byte, error) {
	if m.invert {
		return []byte("inverted"), nil
	}
	return []byte("straight"), nil
}
func (fakeModel) Signature() []client.Field { return []client.Field{{Name: "amount", Type: "double"}} }
func (fakeModel) Profile() json.RawMessage  { return json.RawMessage(`{}`) }
func (fakeModel) Params() map[string]string { return nil }

// auc by pair counting, enough for the test.
func evaluate(_ string, y, s []float64, _ float64) map[string]float64 {
	var pairs, good float64
	for i := range y {
		for j := range y {
			if y[i] == 1 && y[j] == 0 {
				pairs++
				switch {
				case s[i] > s[j]:
					good++
				case s[i] == s[j]:
					good += 0.5
				}
			}
		}
	}
	return map[string]float64{"auc": good / pairs, "log_loss": 0.3}
}

type events struct{ events, labels []dataset.LoggedEvent }

func (e events) Load(context.Context, *modelspec.Spec, dataset.Window) ([]dataset.LoggedEvent, []dataset.LoggedEvent, error) {
	return e.events, e.labels, nil
}

type features struct{ view *views.View }

func (f features) View(name string) (*views.View, bool) { return f.view, name == f.view.Name }
func (f features) PointInTime(_ context.Context, _ string, rows []offline.Row, emit offline.Emit) error {
	res := make([]agg.Result, len(f.view.Features))
	for _, r := range rows {
		for i := range res {
			res[i] = agg.Result{Status: agg.Present, Value: float64(i), EventTime: r.TS - 1000}
		}
		if err := emit(r, res); err != nil {
			return err
		}
	}
	return nil
}

func setup(t *testing.T, learner pipeline.Learner, reg *fakeRegistry, positives func(i int) bool) (*pipeline.Pipeline, *runs.Book) {
	t.Helper()
	specs, err := modelspec.Load(schemas.Models())
	if err != nil {
		t.Fatal(err)
	}
	cat, err := views.Load(schemas.FeatureViews())
	if err != nil {
		t.Fatal(err)
	}
	v, _ := cat.Get("card_activity")
	now := time.Now().UTC()
	var ev events
	for i := range 600 {
		id := fmt.Sprintf("t-%03d", i)
		at := now.Add(-48 * time.Hour).Add(time.Duration(i) * time.Minute)
		amount := float64(i % 100)
		ev.events = append(ev.events, dataset.LoggedEvent{EventID: id, Entity: fmt.Sprintf("c-%d", i%7), TimeMS: at.UnixMilli(),
			Payload: fmt.Appendf(nil, `{"amount":%v,"merchant_category":"m%d","channel":"pos","country":"DE"}`, amount, i%3)})
		ev.labels = append(ev.labels, dataset.LoggedEvent{EventID: id + ":label", TimeMS: at.Add(time.Hour).UnixMilli(),
			Payload: fmt.Appendf(nil, `{"transaction_id":%q,"is_fraud":%v}`, id, positives(i))})
	}
	book := runs.NewBook(map[string]time.Duration{"fraud": time.Minute}, 100, time.Now)
	return pipeline.New(pipeline.Deps{Specs: specs, Events: ev, Features: features{view: v}, Registry: reg, Learner: learner,
		Evaluate: evaluate, Book: book, CodeVersion: "test", Log: zap.NewNop()}), book
}

func execute(t *testing.T, p *pipeline.Pipeline, book *runs.Book) *runs.Run {
	t.Helper()
	d, err := book.Request("fraud", runs.Trigger{Kind: runs.Manual})
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Execute(context.Background(), d.Run)
	r, _ := book.Get(d.Run.ID)
	return r
}

func TestFirstModelBecomesChampionAndABadCandidateStaysChallenger(t *testing.T) {
	reg := newFakeRegistry()
	fraudIfLarge := func(i int) bool { return i%100 >= 80 } // label rate 0.2, amount predicts it
	p, book := setup(t, fakeLearner{}, reg, fraudIfLarge)
	r := execute(t, p, book)
	if r.Stage != runs.Succeeded || !r.Promoted || r.ModelVersion != 1 || r.DatasetVersion == "" || r.RegistryRunID != "run1" {
		t.Fatalf("first run: %+v", r)
	}
	if reg.aliases["champion"] != 1 || reg.runs["run1"] != "FINISHED" {
		t.Fatalf("aliases %v runs %v", reg.aliases, reg.runs)
	}
	if _, ok := reg.artifacts["mlflow-artifacts:/1/run1/artifacts/"+pipeline.SnapshotPath]; !ok {
		t.Fatal("the dataset snapshot must be stored with the run")
	}
	v := reg.versions[0]
	if v.Lineage.DatasetVersion != r.DatasetVersion || v.Lineage.Trigger != "manual" || v.Lineage.FeatureViews["card_activity"] == "" || v.Tags["flywheel.artifact_sha256"] == "" {
		t.Fatalf("lineage %+v tags %v", v.Lineage, v.Tags)
	}
	keys := map[string]int{}
	for _, m := range reg.metrics["run1"] {
		keys[m.Key]++
	}
	if keys["train_loss"] != 3 || keys["test_auc"] != 1 || keys["champion_test_auc"] != 0 {
		t.Fatalf("metrics logged %v", keys)
	}

	// A candidate whose scores are reversed (as a model of shuffled labels is no better than
	// chance) must be refused, the failing gate named, the champion untouched.
	p2, book2 := setup(t, fakeLearner{invert: true}, reg, fraudIfLarge)
	r2 := execute(t, p2, book2)
	if r2.Stage != runs.Succeeded || r2.Promoted || r2.ModelVersion != 2 {
		t.Fatalf("second run: %+v", r2)
	}
	if reg.aliases["champion"] != 1 || reg.aliases["challenger"] != 2 {
		t.Fatalf("aliases after a refused candidate: %v", reg.aliases)
	}
	if out := reg.tags["run2"][pipeline.TagOutcome]; !strings.Contains(out, "auc threshold") || !strings.Contains(out, "min_relative_change") {
		t.Fatalf("the outcome must name the failing gates: %q", out)
	}
	keys = map[string]int{}
	for _, m := range reg.metrics["run2"] {
		keys[m.Key]++
	}
	if keys["champion_test_auc"] != 1 {
		t.Fatalf("the champion must be re-scored on the candidate's holdout: %v", keys)
	}
}

func TestUnfitDatasetFailsTheRunWithTheReason(t *testing.T) {
	reg := newFakeRegistry()
	p, book := setup(t, fakeLearner{}, reg, func(int) bool { return false })
	r := execute(t, p, book)
	if r.Stage != runs.Failed || !strings.Contains(r.Error, "only one class") {
		t.Fatalf("want a failed run naming the one class: %+v", r)
	}
	if len(reg.versions) != 0 || len(reg.aliases) != 0 {
		t.Fatal("nothing may be registered from an unfit dataset")
	}
}

func TestValidateAndReproduce(t *testing.T) {
	reg := newFakeRegistry()
	fraudIfLarge := func(i int) bool { return i%100 >= 80 }
	p, book := setup(t, fakeLearner{}, reg, fraudIfLarge)
	execute(t, p, book)
	p2, book2 := setup(t, fakeLearner{invert: true}, reg, fraudIfLarge)
	execute(t, p2, book2)

	v, err := p.Validate(context.Background(), "fraud", 2)
	if err != nil {
		t.Fatal(err)
	}
	if v.Passed || v.Champion != 1 || v.Rows == 0 || v.Gates[0].Passed {
		t.Fatalf("version 2 must fail the gates against champion 1: %+v", v)
	}
	if v, err := p.Validate(context.Background(), "fraud", 1); err != nil || !v.Passed || v.Champion != 0 {
		t.Fatalf("the champion itself passes the thresholds: %+v %v", v, err)
	}
	r, err := p.Reproduce(context.Background(), "run1")
	if err != nil || !r.Identical || r.Rows != 600 {
		t.Fatalf("reproduce: %+v %v", r, err)
	}
	if _, err := p.Reproduce(context.Background(), "run9"); err == nil {
		t.Fatal("an unknown run cannot be reproduced")
	}
}

func TestCoalescedTagIsBoundedAndReadsBack(t *testing.T) {
	run := func(ids ...string) *runs.Run {
		r := &runs.Run{}
		for _, id := range ids {
			r.Coalesced = append(r.Coalesced, runs.Trigger{Kind: runs.Drift, EventID: id})
		}
		return r
	}
	if got := pipeline.CoalescedTag(run()); got != "[]" {
		t.Fatalf("no coalesced events: %q", got)
	}
	odd := []string{`a,b`, `say "hi"`, `<tag>&`, `ünï`}
	tag := pipeline.CoalescedTag(run(odd...))
	if got, err := pipeline.ParseCoalesced(tag); err != nil || !slices.Equal(got, odd) {
		t.Fatalf("ids with commas, quotes and markup read back: %q → %q %v", tag, got, err)
	}
	var many []string
	for i := range 1000 {
		many = append(many, fmt.Sprintf("drift-%024x", i))
	}
	tag = pipeline.CoalescedTag(run(many...))
	got, err := pipeline.ParseCoalesced(tag)
	if err != nil || len(tag) > pipeline.MaxTagBytes || len(tag) < pipeline.MaxTagBytes-40 {
		t.Fatalf("1000 ids fill one tag without passing its limit: %d bytes, %v", len(tag), err)
	}
	if !slices.Equal(got, many[len(many)-len(got):]) {
		t.Fatalf("the newest ids are kept, oldest first: %v…", got[:3])
	}
	huge := strings.Repeat("x", pipeline.MaxTagBytes)
	if tag := pipeline.CoalescedTag(run("d-1", huge)); tag != "[]" {
		t.Fatalf("an id that cannot fit ends the list: %d bytes", len(tag))
	}
	for in, want := range map[string][]string{"": nil, "d-1,d-2": {"d-1", "d-2"}, `["d-1"]`: {"d-1"}} {
		if got, err := pipeline.ParseCoalesced(in); err != nil || !slices.Equal(got, want) {
			t.Fatalf("ParseCoalesced(%q) = %q %v", in, got, err)
		}
	}
	if _, err := pipeline.ParseCoalesced(`["d-1"`); err == nil {
		t.Fatal("a cut JSON array is an error")
	}
}

// joiningLearner calls during before training, as a drift event arriving mid-run would.
type joiningLearner struct {
	fakeLearner
	during func()
	err    error
}

func (l joiningLearner) Train(ctx context.Context, s *modelspec.Spec, b *dataset.Built, train []int, seed uint64, progress func(int, map[string]float64)) (pipeline.Model, error) {
	l.during()
	if l.err != nil {
		return nil, l.err
	}
	return l.fakeLearner.Train(ctx, s, b, train, seed, progress)
}

// Drift events folded into a run reach its registry run: those that joined it while it ran (when
// it succeeds and when it fails), and those coalesced after it ended — each write once, and a
// failed write is done again by the next call.
func TestFoldedDriftEventsAreRecordedOnTheRegistryRun(t *testing.T) {
	fraudIfLarge := func(i int) bool { return i%100 >= 80 }
	for _, fail := range []error{nil, errors.New("out of memory")} {
		reg := newFakeRegistry()
		var book *runs.Book
		l := joiningLearner{during: func() {
			if d, err := book.Request("fraud", runs.Trigger{Kind: runs.Drift, EventID: "d-2"}); err != nil || d.Outcome != "joined" {
				t.Errorf("a drift event during the run joins it: %+v %v", d, err)
			}
		}, err: fail}
		var p *pipeline.Pipeline
		p, book = setup(t, l, reg, fraudIfLarge)
		d, _ := book.Request("fraud", runs.Trigger{Kind: runs.Drift, EventID: "d-1"})
		_ = p.Execute(context.Background(), d.Run)
		r, _ := book.Get(d.Run.ID)
		if (fail == nil) != (r.Stage == runs.Succeeded) {
			t.Fatalf("run: %+v", r)
		}
		if got := reg.tags["run1"][pipeline.TagCoalesced]; got != `["d-2"]` || reg.coalescedWrites != 1 {
			t.Fatalf("failed=%v: the joined event on the registry run: %q after %d writes", fail != nil, got, reg.coalescedWrites)
		}
		c, _ := book.Request("fraud", runs.Trigger{Kind: runs.Drift, EventID: "d-3"})
		if c.Outcome != "coalesced" {
			t.Fatalf("an event inside the cooldown after the run: %+v", c)
		}
		reg.failCoalesced = errors.New("registry down")
		if err := p.RecordCoalesced(context.Background(), d.Run.ID); err == nil {
			t.Fatal("a failed write is reported")
		}
		reg.failCoalesced = nil
		for range 2 {
			if err := p.RecordCoalesced(context.Background(), d.Run.ID); err != nil {
				t.Fatal(err)
			}
		}
		if got := reg.tags["run1"][pipeline.TagCoalesced]; got != `["d-2","d-3"]` || reg.coalescedWrites != 2 {
			t.Fatalf("after the retry: %q after %d writes", got, reg.coalescedWrites)
		}
	}
}

// arriving is an event log whose labelled events after the drift grow by two per read.
type arriving struct {
	events
	since time.Time
	reads *int
}

func (a arriving) Load(ctx context.Context, spec *modelspec.Spec, w dataset.Window) ([]dataset.LoggedEvent, []dataset.LoggedEvent, error) {
	if !w.From.Equal(a.since) {
		return a.events.Load(ctx, spec, w)
	}
	*a.reads++
	n := min(2**a.reads, len(a.events.events))
	return a.events.events[:n], a.events.labels[:n], nil
}

// TestDriftRetrainWaitsForFreshLabels: a drift-triggered run with fresh_rows reads the
// labelled examples after the detection until there are enough, then trains on the whole
// window; a manual run does not wait; a run that never gets them goes on after fresh_wait.
func TestDriftRetrainWaitsForFreshLabels(t *testing.T) {
	for _, tc := range []struct {
		name      string
		kind      string
		fresh     int
		wait      time.Duration
		wantReads int
	}{
		{"drift waits until 6 are there", runs.Drift, 6, time.Hour, 3},
		{"manual does not wait", runs.Manual, 6, time.Hour, 0},
		{"gives up after fresh_wait", runs.Drift, 1_000_000, time.Minute, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFakeRegistry()
			_, book := setup(t, fakeLearner{}, reg, func(i int) bool { return i%100 >= 80 })
			specs, _ := modelspec.Load(schemas.Models())
			specs["fraud"].Training.FreshRows = tc.fresh
			specs["fraud"].Training.FreshWait = modelspec.Duration(tc.wait)
			cat, _ := views.Load(schemas.FeatureViews())
			v, _ := cat.Get("card_activity")
			detected := time.Now().UTC().Add(-time.Hour)
			reads := 0
			var log events
			for i := range 600 {
				id := fmt.Sprintf("t-%03d", i)
				at := time.Now().UTC().Add(-48 * time.Hour).Add(time.Duration(i) * time.Minute)
				log.events = append(log.events, dataset.LoggedEvent{EventID: id, Entity: "c-1", TimeMS: at.UnixMilli(),
					Payload: fmt.Appendf(nil, `{"amount":%v,"merchant_category":"m","channel":"pos","country":"DE"}`, i%100)})
				log.labels = append(log.labels, dataset.LoggedEvent{EventID: id + ":label", TimeMS: at.Add(time.Hour).UnixMilli(),
					Payload: fmt.Appendf(nil, `{"transaction_id":%q,"is_fraud":%v}`, id, i%100 >= 80)})
			}
			clock := time.Now()
			p := pipeline.New(pipeline.Deps{Specs: specs, Events: arriving{events: log, since: detected, reads: &reads}, Features: features{view: v},
				Registry: reg, Learner: fakeLearner{}, Evaluate: evaluate, Book: book, CodeVersion: "test", Log: zap.NewNop(),
				Now: func() time.Time { return clock }, Sleep: func(d time.Duration) <-chan time.Time {
					clock = clock.Add(d)
					c := make(chan time.Time, 1)
					c <- clock
					return c
				}})
			d, err := book.Request("fraud", runs.Trigger{Kind: tc.kind, EventID: "e-1", At: detected})
			if err != nil {
				t.Fatal(err)
			}
			_ = p.Execute(context.Background(), d.Run)
			r, _ := book.Get(d.Run.ID)
			if r.Stage != runs.Succeeded {
				t.Fatalf("run: %+v", r)
			}
			if tc.wantReads == 4 && reads < 4 || tc.wantReads != 4 && reads != tc.wantReads {
				t.Fatalf("%d reads of the fresh data, want %d", reads, tc.wantReads)
			}
		})
	}
}
