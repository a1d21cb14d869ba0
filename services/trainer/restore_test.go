package trainer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/trainer"
	"github.com/flywheel-ml/flywheel/services/trainer/pipeline"
	"github.com/flywheel-ml/flywheel/services/trainer/runs"
)

// fakeSearcher answers runs/search from a list of runs per experiment, applying the one
// filter PastDriftRuns sends (a trigger tag LIKE 'drift:%' and a start time bound).
type fakeSearcher struct {
	runs    map[string][]client.Run // experiment name → runs, newest first
	filters []string
	err     error
}

func (f *fakeSearcher) EnsureExperiment(_ context.Context, name string) (string, error) {
	return "exp-" + name, f.err
}

func (f *fakeSearcher) SearchRuns(_ context.Context, exps []string, filter string, max int) ([]client.Run, error) {
	f.filters = append(f.filters, filter)
	var since int64
	if _, err := fmt.Sscanf(filter[strings.Index(filter, "start_time >= "):], "start_time >= %d", &since); err != nil {
		return nil, err
	}
	var out []client.Run
	for _, r := range f.runs[strings.TrimPrefix(exps[0], "exp-")] {
		if strings.HasPrefix(r.Tag(pipeline.TagTrigger), "drift:") && r.Info.StartTime >= since && len(out) < max {
			out = append(out, r)
		}
	}
	return out, nil
}

func run(id, status string, start time.Time, tags map[string]string) client.Run {
	var r client.Run
	r.Info.ID, r.Info.Status, r.Info.StartTime = id, status, start.UnixMilli()
	for k, v := range tags {
		r.Data.Tags = append(r.Data.Tags, client.RunTag{Key: k, Value: v})
	}
	return r
}

func TestPastDriftRunsRestoreDuplicatesAndTheCooldown(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	detected := now.Add(-3 * time.Minute)
	reg := &fakeSearcher{runs: map[string][]client.Run{
		"fraud": {
			run("r3", "RUNNING", now.Add(-time.Minute), map[string]string{pipeline.TagTrainerRun: "tr-3", pipeline.TagTrigger: "drift:d-5"}),
			run("r2", "FINISHED", now.Add(-2*time.Minute), map[string]string{pipeline.TagTrainerRun: "tr-2", pipeline.TagTrigger: "manual"}),
			run("r1", "FINISHED", now.Add(-2*time.Minute), map[string]string{pipeline.TagTrainerRun: "tr-1", pipeline.TagTrigger: "drift:d-1",
				pipeline.TagTriggerAt: detected.Format(time.RFC3339Nano), pipeline.TagCoalesced: `["d-2","d,3"]`}),
			run("r0", "FAILED", now.Add(-30*time.Minute), map[string]string{pipeline.TagTrainerRun: "tr-0", pipeline.TagTrigger: "drift:d-0",
				pipeline.TagCoalesced: "d-00,d-01", pipeline.TagOutcome: "failed: boom"}),
			run("old", "FINISHED", now.Add(-2*time.Hour), map[string]string{pipeline.TagTrainerRun: "tr-old", pipeline.TagTrigger: "drift:d-old"}),
		},
		// No cooldown: the event ids of the last hour are still restored.
		"churn": {run("c1", "FINISHED", now.Add(-10*time.Minute), map[string]string{pipeline.TagTrainerRun: "tr-c", pipeline.TagTrigger: "drift:c-1"})},
	}}
	specs := map[string]*modelspec.Spec{"fraud": {Name: "fraud", Cooldown: modelspec.Duration(10 * time.Minute)}, "churn": {Name: "churn"}}
	past, err := trainer.PastDriftRuns(context.Background(), reg, specs, now)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]runs.Past{}
	for _, p := range past {
		byID[p.RunID] = p
	}
	if len(past) != 4 || byID["tr-old"].RunID != "" || byID["tr-2"].RunID != "" {
		t.Fatalf("the drift runs within 2 cooldowns and an hour: %+v", past)
	}
	if p := byID["tr-1"]; p.RegistryRunID != "r1" || p.Trigger.EventID != "d-1" || !p.Trigger.At.Equal(detected) ||
		strings.Join(p.Coalesced, "|") != "d-2|d,3" || p.Stage != "" {
		t.Fatalf("a finished drift run: %+v", p)
	}
	if p := byID["tr-0"]; p.Stage != runs.Failed || !strings.Contains(p.Error, "boom") || strings.Join(p.Coalesced, "|") != "d-00|d-01" ||
		!p.Trigger.At.Equal(now.Add(-30*time.Minute)) {
		t.Fatalf("a failed drift run, its coalesced ids in the earlier comma format, its start time as trigger time: %+v", p)
	}
	if p := byID["tr-3"]; p.Stage != runs.Failed || !strings.Contains(p.Error, "RUNNING") {
		t.Fatalf("a run left RUNNING by a process that died: %+v", p)
	}
	for _, f := range reg.filters {
		if !strings.HasPrefix(f, "tags.`flywheel.trigger` LIKE 'drift:%' AND attributes.start_time >= ") {
			t.Fatalf("filter %q", f)
		}
	}

	book := runs.NewBook(map[string]time.Duration{"fraud": 10 * time.Minute, "churn": 0}, 100, func() time.Time { return now })
	book.Restore(past)
	for _, tc := range []struct {
		model, event, outcome, run string
		at                         time.Time
	}{
		{"fraud", "d-1", "duplicate", "tr-1", detected},
		{"fraud", "d,3", "duplicate", "tr-1", now},
		{"fraud", "d-01", "duplicate", "tr-0", now},
		{"fraud", "d-6", "coalesced", "tr-3", now}, // the cooldown of the newest drift run
		{"churn", "c-1", "duplicate", "tr-c", now},
	} {
		d, err := book.Request(tc.model, runs.Trigger{Kind: runs.Drift, EventID: tc.event, At: tc.at})
		if err != nil || d.Started || d.Outcome != tc.outcome || d.Run.ID != tc.run {
			t.Errorf("%s after the restart: %+v %v, want %s into %s", tc.event, d, err, tc.outcome, tc.run)
		}
	}
	if d, _ := book.Request("fraud", runs.Trigger{Kind: runs.Drift, EventID: "d-7", At: now.Add(10 * time.Minute)}); !d.Started {
		t.Errorf("after the cooldown a drift event retrains: %+v", d)
	}

	reg.err = errors.New("registry down")
	if _, err := trainer.PastDriftRuns(context.Background(), reg, specs, now); !errors.Is(err, reg.err) {
		t.Fatalf("the registry's error is returned (start-up retries it): %v", err)
	}
}
