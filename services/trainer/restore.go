package trainer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/trainer/pipeline"
	"github.com/flywheel-ml/flywheel/services/trainer/runs"
)

// RunSearcher is what PastDriftRuns needs of the registry (client.Client). SearchRuns answers
// the runs of the experiments matching an MLflow filter, newest first, at most max.
type RunSearcher interface {
	EnsureExperiment(ctx context.Context, name string) (string, error)
	SearchRuns(ctx context.Context, experimentIDs []string, filter string, max int) ([]client.Run, error)
}

// Bounds of what PastDriftRuns reads back.
const (
	// pastMargin is added to twice a model's cooldown: a redelivered event may be older than
	// the cooldown, and a model without a cooldown still needs its recent event ids.
	pastMargin = time.Hour
	// pastMax is the most drift runs read per model (newest first).
	pastMax = 1000
)

// PastDriftRuns reads from the registry the drift-triggered runs recent enough to matter — the
// runs of each model's experiment tagged flywheel.trigger "drift:<event id>" that started
// within twice the model's cooldown plus an hour — with their trigger time and coalesced
// events, so a restarted trainer still treats a redelivered drift event as a duplicate and
// still holds the cooldown (the run book itself is in memory). A run the registry still shows
// RUNNING was not finished by the process that started it, and is restored as failed.
func PastDriftRuns(ctx context.Context, reg RunSearcher, specs map[string]*modelspec.Spec, now time.Time) ([]runs.Past, error) {
	var past []runs.Past
	for name, s := range specs {
		exp, err := reg.EnsureExperiment(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("experiment of %s: %w", name, err)
		}
		since := now.Add(-2*time.Duration(max(s.Cooldown, 0)) - pastMargin).UnixMilli()
		found, err := reg.SearchRuns(ctx, []string{exp},
			fmt.Sprintf("tags.`%s` LIKE 'drift:%%' AND attributes.start_time >= %d", pipeline.TagTrigger, since), pastMax)
		if err != nil {
			return nil, fmt.Errorf("past drift runs of %s: %w", name, err)
		}
		for _, r := range found {
			past = append(past, pastRun(name, r))
		}
	}
	return past, nil
}

func pastRun(model string, r client.Run) runs.Past {
	p := runs.Past{RunID: r.Tag(pipeline.TagTrainerRun), RegistryRunID: r.Info.ID, Model: model,
		Trigger: runs.Trigger{Kind: runs.Drift, EventID: strings.TrimPrefix(r.Tag(pipeline.TagTrigger), runs.Drift+":"),
			At: time.UnixMilli(r.Info.StartTime).UTC()}}
	if p.RunID == "" { // not a trainer's run: nothing to restore under
		p.RunID = "registry-" + r.Info.ID
	}
	if at, err := time.Parse(time.RFC3339Nano, r.Tag(pipeline.TagTriggerAt)); err == nil {
		p.Trigger.At = at
	}
	// The trainer writes the tag with CoalescedTag; one edited by hand into something
	// unreadable loses its ids, not the start-up: the events it held are inside the
	// run's cooldown, so they are still coalesced.
	p.Coalesced, _ = pipeline.ParseCoalesced(r.Tag(pipeline.TagCoalesced))
	switch r.Info.Status {
	case "FAILED", "KILLED":
		p.Stage, p.Error = runs.Failed, "registry run "+r.Info.Status+": "+r.Tag(pipeline.TagOutcome)
	case "RUNNING", "SCHEDULED":
		p.Stage, p.Error = runs.Failed, "not finished by the trainer process that started it (registry run "+r.Info.Status+" at start-up)"
	}
	return p
}
