package scenario

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/flywheel-ml/flywheel/ml/metrics"
)

// Report is what the scenario saw happen.
type Report struct {
	Model      string
	Grafana    string
	First      trainRun
	DriftAt    time.Time // injected
	NewVersion int       // the version serving switched to (0: none)
	SwapSeen   time.Time // its first answer
	Sent       int64
	Failed     int64

	LastFailure string
	Event       driftEvent // the drift event the retrain names
	Events      []driftEvent
	Retrain     retrainRun
	Promotion   aliasMove

	// AUC of the payments' scores against their labels
	BeforeDrift, DriftedOld, DriftedNew float64 // v1 before the drift; v1 and the new one on the same drifted payments
	Compared                            int
	SkewChecked, SkewMismatches         uint64
}

type driftEvent struct {
	ID         string    `ch:"id"`
	Kind       string    `ch:"kind"`
	Features   string    `ch:"features"`
	DetectedAt time.Time `ch:"detected_at"`
	WindowEnd  time.Time `ch:"window_end"`
}

type retrainRun struct {
	Version       int
	RunID         string
	Trigger       string
	Started, Done time.Time
	Gates         string
	Outcome       string
}

// collect reads what the services recorded and scores the versions.
func (r *Report) collect(ctx context.Context, cfg Config, api *apiClient, records []scored, firstVersion int) error {
	_ = cfg.ClickHouse.Select(ctx, &r.Events, `SELECT id, kind, features, detected_at, window_end FROM drift_events FINAL
		WHERE model = ? AND detected_at >= toDateTime(?) ORDER BY detected_at`, cfg.Model, uint32(r.DriftAt.Unix()))
	if r.NewVersion > 0 {
		v, err := api.version(ctx, cfg.Model, r.NewVersion)
		if err != nil {
			return err
		}
		r.Retrain = retrainRun{Version: v.Version, RunID: v.Lineage.RunID, Trigger: v.Lineage.Trigger}
		if v.Lineage.RunID != "" {
			tags, start, end, err := api.runTags(ctx, v.Lineage.RunID)
			if err == nil {
				r.Retrain.Started, r.Retrain.Done = start, end
				r.Retrain.Gates, r.Retrain.Outcome = tags["flywheel.gates"], tags["flywheel.outcome"]
			}
		}
		for _, e := range r.Events {
			if "drift:"+e.ID == r.Retrain.Trigger {
				r.Event = e
			}
		}
		moves, _ := api.aliasHistory(ctx, cfg.Model)
		for _, m := range moves {
			if m.Alias == "champion" && m.Version == r.NewVersion {
				r.Promotion = m
			}
		}
	}
	var before, y, old, neu []float64
	var yBefore []float64
	for _, rec := range records {
		switch {
		case !rec.drifted && rec.version == firstVersion:
			yBefore, before = append(yBefore, b2f(rec.fraud)), append(before, rec.score)
		case rec.drifted && rec.version == r.NewVersion && !math.IsNaN(rec.pinned):
			y, neu, old = append(y, b2f(rec.fraud)), append(neu, rec.score), append(old, rec.pinned)
		}
	}
	r.BeforeDrift = metrics.EvaluateBinary(yBefore, before, 0.5).AUC
	r.Compared = len(y)
	r.DriftedNew = metrics.EvaluateBinary(y, neu, 0.5).AUC
	r.DriftedOld = metrics.EvaluateBinary(y, old, 0.5).AUC
	_ = cfg.ClickHouse.QueryRow(ctx, `SELECT sum(n), sum(mismatches) FROM skew_checks FINAL WHERE model = ?`, cfg.Model).
		Scan(&r.SkewChecked, &r.SkewMismatches)
	return nil
}

// Missing names every step of the loop that did not happen.
func (r *Report) Missing() []string {
	var out []string
	if len(r.Events) == 0 {
		out = append(out, "no drift event after the drift was injected")
	}
	if r.NewVersion == 0 {
		out = append(out, "serving never answered with a new version")
		return out
	}
	if r.Event.ID == "" {
		out = append(out, fmt.Sprintf("version %d's trigger is %q, not one of the drift events", r.NewVersion, r.Retrain.Trigger))
	}
	if r.Promotion.Version != r.NewVersion {
		out = append(out, fmt.Sprintf("version %d never became champion", r.NewVersion))
	}
	if r.Failed > 0 {
		out = append(out, fmt.Sprintf("%d failed requests (last: %s)", r.Failed, r.LastFailure))
	}
	if !(r.DriftedNew > r.DriftedOld) {
		out = append(out, fmt.Sprintf("on the same %d drifted payments the new champion's AUC %.3f does not beat the old one's %.3f", r.Compared, r.DriftedNew, r.DriftedOld))
	}
	return out
}

// Print writes the final report.
func (r *Report) Print(w io.Writer) {
	at := func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return fmt.Sprintf("+%5.1fs", t.Sub(r.DriftAt).Seconds())
	}
	fmt.Fprintf(w, "\n== The loop (times after the drift was injected at %s)\n", r.DriftAt.Format(time.TimeOnly))
	for _, e := range r.Events {
		fmt.Fprintf(w, "  %s  drift event %s (%s), window ending %s: %s\n", at(e.DetectedAt), e.ID, e.Kind, e.WindowEnd.Format(time.TimeOnly), summarize(e.Features))
	}
	fmt.Fprintf(w, "  %s  retrain run %s started (trigger %s)\n", at(r.Retrain.Started), r.Retrain.RunID, r.Retrain.Trigger)
	fmt.Fprintf(w, "  %s  retrain done: version %d registered; gates: %s\n", at(r.Retrain.Done), r.Retrain.Version, oneLine(r.Retrain.Gates))
	fmt.Fprintf(w, "  %s  champion → version %d (%s): %s\n", at(r.Promotion.At), r.Promotion.Version, r.Promotion.Actor, oneLine(r.Promotion.Reason))
	fmt.Fprintf(w, "  %s  serving answers with version %d\n", at(r.SwapSeen), r.NewVersion)
	if r.Event.ID != "" && !r.SwapSeen.IsZero() {
		fmt.Fprintf(w, "  drift event → new champion serving: %.1f s\n", r.SwapSeen.Sub(r.Event.DetectedAt).Seconds())
	}
	fmt.Fprintf(w, "\n== Metrics\n")
	fmt.Fprintf(w, "  version %d before the drift:                 AUC %.3f\n", r.First.ModelVersion, r.BeforeDrift)
	fmt.Fprintf(w, "  the same %d drifted payments, scored by both: version %d AUC %.3f, version %d AUC %.3f\n",
		r.Compared, r.First.ModelVersion, r.DriftedOld, r.NewVersion, r.DriftedNew)
	fmt.Fprintf(w, "  requests: %d sent, %d failed\n", r.Sent, r.Failed)
	fmt.Fprintf(w, "  skew check: %d feature values recomputed from the offline store, %d mismatches", r.SkewChecked, r.SkewMismatches)
	if r.SkewMismatches > 0 {
		fmt.Fprintf(w, " — training-serving skew: see skew_checks.example for each")
	}
	fmt.Fprintln(w)
	if r.Grafana != "" {
		fmt.Fprintf(w, "\n== Where to look\n  %s\n", r.Grafana)
	}
}

func summarize(features string) string {
	if len(features) > 160 {
		return features[:160] + "…"
	}
	return features
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
