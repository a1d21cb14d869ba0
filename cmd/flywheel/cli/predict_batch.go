package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
)

func predictBatchCommand(lookup config.LookupFunc) *cobra.Command {
	opts := &clientOptions{}
	var modelsDir, pin, from, to string
	var limit int
	cmd := &cobra.Command{
		Use:   "batch MODEL --from TIME --to TIME",
		Short: "Score the stored events of a time range through serving, into the prediction log",
		Long: `Reads the model's prediction events (its spec's prediction_stream) with event time in
[--from, --to) from the ClickHouse event log, and scores them through serving 100 at a time —
the same code as live requests, into the same prediction log. Each event's features are read
point in time from the feature store's offline retrieval as of 1 ms before the event (what
live serving saw, see the trainer's README) and sent as supplied values, so a past range is
scored as it would have been, not with today's features. Progress goes to stderr; the summary
to stdout. Exits non-zero if any call failed.`,
		Example: `  flywheel predict batch fraud --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z
  flywheel predict batch fraud --from 2026-12-01T00:00:00Z --to 2026-12-01T01:00:00Z --pin challenger -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			start, err1 := time.Parse(time.RFC3339Nano, from)
			end, err2 := time.Parse(time.RFC3339Nano, to)
			if err1 != nil || err2 != nil || !end.After(start) {
				return fmt.Errorf("--from and --to must be RFC 3339 times with --to after --from")
			}
			spec, err := loadSpec(modelsDir, args[0])
			if err != nil {
				return err
			}
			serving, err := opts.client(servingService, lookup)
			if err != nil {
				return err
			}
			features, err := opts.client(featuresService, lookup)
			if err != nil {
				return err
			}
			var cfg struct{ ClickHouse chx.Config }
			if err := config.Load(&cfg, nil, lookup, io.Discard); err != nil {
				return err
			}
			conn, err := chx.Open(cmd.Context(), cfg.ClickHouse)
			if err != nil {
				return fmt.Errorf("clickhouse %s (is the stack up? `make up`): %w", cfg.ClickHouse.Addr, err)
			}
			defer conn.Close()
			sum, err := runBatch(cmd.Context(), batchJob{spec: spec, serving: serving, features: features, pin: pin,
				count: func(ctx context.Context) (uint64, error) {
					var total uint64
					err := conn.QueryRow(ctx, "SELECT count() FROM events FINAL WHERE stream = ? AND event_time_ms >= ? AND event_time_ms < ?",
						spec.PredictionStream, start.UnixMilli(), end.UnixMilli()).Scan(&total)
					return total, err
				},
				scan: func(ctx context.Context, visit func(eventID string, at time.Time, payload string) error) error {
					q := "SELECT event_id, event_time_ms, payload FROM events FINAL WHERE stream = ? AND event_time_ms >= ? AND event_time_ms < ? ORDER BY event_time_ms, event_id"
					if limit > 0 {
						q += fmt.Sprintf(" LIMIT %d", limit)
					}
					rows, err := conn.Query(ctx, q, spec.PredictionStream, start.UnixMilli(), end.UnixMilli())
					if err != nil {
						return fmt.Errorf("read events: %w", err)
					}
					defer rows.Close()
					for rows.Next() {
						var id, payload string
						var ms int64
						if err := rows.Scan(&id, &ms, &payload); err != nil {
							return err
						}
						if err := visit(id, time.UnixMilli(ms).UTC(), payload); err != nil {
							return err
						}
					}
					return rows.Err()
				}}, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			err = emit(cmd.OutOrStdout(), opts.output, sum, func(w io.Writer) error {
				fmt.Fprintf(w, "scored %d of %d %s events in %s (%.0f/s); %d failed\n", sum.Scored, sum.Events, spec.PredictionStream,
					sum.Elapsed, float64(sum.Scored)/max(sum.Elapsed.Seconds(), 1e-9), sum.Failed)
				for v, n := range sum.Versions {
					fmt.Fprintf(w, "  version %s: %d predictions\n", v, n)
				}
				if sum.Scored > 0 {
					fmt.Fprintf(w, "  mean score %.4f, label 1 for %.2f %%\n", sum.MeanScore, 100*sum.PositiveRate)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if sum.Failed > 0 {
				return fmt.Errorf("%d events were not scored; first error: %s", sum.Failed, sum.FirstError)
			}
			return nil
		},
	}
	opts.addFlags(cmd, servingService, featuresService)
	cmd.Flags().StringVar(&modelsDir, "models-dir", "", "directory of training specs (default: the shipped ones)")
	cmd.Flags().StringVar(&from, "from", "", "start of the event-time range (RFC 3339, inclusive)")
	cmd.Flags().StringVar(&to, "to", "", "end of the event-time range (RFC 3339, exclusive)")
	cmd.Flags().StringVar(&pin, "pin", "", "version to score with: champion, challenger or a version number")
	cmd.Flags().IntVar(&limit, "limit", 0, "score at most this many events (0: all)")
	return cmd
}

func loadSpec(dir, name string) (*modelspec.Spec, error) {
	var fsys fs.FS = schemas.Models()
	if dir != "" {
		fsys = os.DirFS(dir)
	}
	specs, err := modelspec.Load(fsys)
	if err != nil {
		return nil, err
	}
	s, ok := specs[name]
	if !ok {
		var names []string
		for n := range specs {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("no training spec for model %q (known: %s; --models-dir to read others)", name, strings.Join(names, ", "))
	}
	return s, nil
}

type batchJob struct {
	spec              *modelspec.Spec
	serving, features *apiClient
	pin               string
	count             func(ctx context.Context) (uint64, error)
	scan              func(ctx context.Context, visit func(eventID string, at time.Time, payload string) error) error
}

type batchSummary struct {
	Events       uint64         `json:"events"`
	Scored       int            `json:"scored"`
	Failed       int            `json:"failed"`
	FirstError   string         `json:"first_error,omitempty"`
	Versions     map[string]int `json:"versions"`
	MeanScore    float64        `json:"mean_score"`
	PositiveRate float64        `json:"positive_rate"`
	Elapsed      time.Duration  `json:"elapsed_ns"`
}

type pendingEvent struct {
	id       string
	at       time.Time
	instance map[string]any
}

func runBatch(ctx context.Context, job batchJob, progress io.Writer) (*batchSummary, error) {
	sum := &batchSummary{Versions: map[string]int{}}
	began, lastReport := time.Now(), time.Now()
	var chunk []pendingEvent
	var scoreSum float64
	positives := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		defer func() { chunk = chunk[:0] }()
		if err := supplyFeatures(ctx, job, chunk); err != nil {
			return err
		}
		instances := make([]json.RawMessage, len(chunk))
		for i, ev := range chunk {
			instances[i], _ = json.Marshal(ev.instance)
		}
		out, err := callPredict(ctx, job.serving, job.spec.Name, instances, job.pin, "batch-"+chunk[0].id)
		if err != nil {
			sum.Failed += len(chunk)
			if sum.FirstError == "" {
				sum.FirstError = err.Error()
			}
			return nil
		}
		for _, p := range out.Predictions {
			sum.Scored++
			sum.Versions[fmt.Sprint(p.Version)]++
			scoreSum += p.Score
			if p.Label != nil && *p.Label == 1 {
				positives++
			}
		}
		if time.Since(lastReport) > time.Second {
			lastReport = time.Now()
			fmt.Fprintf(progress, "\rscored %d of %d (%.0f/s)   ", sum.Scored, sum.Events, float64(sum.Scored)/time.Since(began).Seconds())
		}
		return nil
	}
	total, err := job.count(ctx)
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	sum.Events = total
	err = job.scan(ctx, func(id string, at time.Time, payload string) error {
		var inst map[string]any
		if err := json.Unmarshal([]byte(payload), &inst); err != nil {
			sum.Failed++
			return nil
		}
		chunk = append(chunk, pendingEvent{id: id, at: at, instance: inst})
		if len(chunk) == maxPredictBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	sum.Elapsed = time.Since(began).Round(time.Millisecond)
	if sum.Scored > 0 {
		sum.MeanScore, sum.PositiveRate = scoreSum/float64(sum.Scored), float64(positives)/float64(sum.Scored)
	}
	fmt.Fprintln(progress)
	return sum, err
}

// supplyFeatures reads each event's features as of 1 ms before it from the offline store (one
// request per view) and puts them into the instances as supplied values.
func supplyFeatures(ctx context.Context, job batchJob, chunk []pendingEvent) error {
	byView := map[string][]string{}
	for _, ref := range job.spec.FeatureRefs() {
		byView[ref.View] = append(byView[ref.View], ref.View+":"+ref.Feature)
	}
	for view, feats := range byView {
		rows := make([]map[string]any, len(chunk))
		for i, ev := range chunk {
			row := map[string]any{}
			for k, v := range ev.instance {
				row[k] = v
			}
			row["event_timestamp"] = ev.at.Add(-time.Millisecond).Format(time.RFC3339Nano)
			rows[i] = row
		}
		lines, err := job.features.postNDJSON(ctx, "/v1/features/historical", map[string]any{"features": feats, "entity_rows": rows})
		if err != nil {
			return fmt.Errorf("point-in-time features of %s: %w", view, err)
		}
		for _, line := range lines {
			idx, ok := line["row"].(float64)
			if !ok || int(idx) < 0 || int(idx) >= len(chunk) {
				if e, bad := line["error"]; bad {
					return fmt.Errorf("point-in-time features of %s: %v", view, e)
				}
				continue
			}
			inst := chunk[int(idx)].instance
			sup, _ := inst["features"].(map[string]any)
			if sup == nil {
				sup = map[string]any{}
				inst["features"] = sup
			}
			for _, f := range feats {
				if v, ok := line[f]; ok && v != nil {
					sup[f] = v
				}
			}
		}
	}
	return nil
}
