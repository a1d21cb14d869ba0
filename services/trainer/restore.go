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

// PastDriftRuns reads from the registry the drift-triggered runs recent enough to matter — within
// twice the longest cooldown — so a restarted trainer still treats a redelivered drift event as
// a duplicate and still holds the cooldown (the run book itself is in memory).
func PastDriftRuns(ctx context.Context, reg *client.Client, specs map[string]*modelspec.Spec, now time.Time) ([]runs.Past, error) {
	var past []runs.Past
	for name, s := range specs {
		cooldown := time.Duration(s.Cooldown)
		if cooldown <= 0 {
			continue
		}
		exp, err := reg.EnsureExperiment(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("experiment of %s: %w", name, err)
		}
		since := now.Add(-2*cooldown - time.Hour).UnixMilli()
		found, err := reg.SearchRuns(ctx, []string{exp},
			fmt.Sprintf("tags.`%s` LIKE 'drift:%%' AND attributes.start_time > %d", pipeline.TagTrigger, since), 1000)
		if err != nil {
			return nil, fmt.Errorf("past drift runs of %s: %w", name, err)
		}
		for _, r := range found {
			p := runs.Past{RunID: r.Tag(pipeline.TagTrainerRun), RegistryRunID: r.Info.ID, Model: name,
				Trigger: runs.Trigger{Kind: runs.Drift, EventID: strings.TrimPrefix(r.Tag(pipeline.TagTrigger), "drift:"),
					At: time.UnixMilli(r.Info.StartTime)}}
			if at, err := time.Parse(time.RFC3339Nano, r.Tag(pipeline.TagTriggerAt)); err == nil {
				p.Trigger.At = at
			}
			if c := r.Tag(pipeline.TagCoalesced); c != "" {
				p.Coalesced = strings.Split(c, ",")
			}
			past = append(past, p)
		}
	}
	return past, nil
}
