// Package evaluate runs the monitor's windows: every tick it finds the event-time windows
// that closed (end + grace ≤ now) since the last one evaluated, reads each served version's
// predictions in the window from the durable log, scores data and prediction drift against
// the version's reference, scores quality and concept drift once labels arrive, writes the
// results, and decides drift events when a condition persists (k of the last n windows)
// outside the cooldown. Everything it decides is derived from ClickHouse, so a restart
// resumes at the first window not yet written and decides nothing twice.
package evaluate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/monitor/concept"
	"github.com/flywheel-ml/flywheel/services/monitor/reference"
	"github.com/flywheel-ml/flywheel/services/monitor/source"
)

// Kinds of drift.
const (
	Data       = "data"
	Prediction = "prediction"
	Concept    = "concept"
)

// Score is one statistic of one feature (or the predictions, or a quality metric) in a window.
type Score struct {
	Kind      string
	Feature   string
	Method    string
	Score     float64
	Threshold float64
	PValue    float64 // NaN when the method has none
	Drifted   bool
}

// Detector scores a window's encoded rows (signature order, NaN missing) and its scores
// against a reference, deciding per feature after correcting for testing many features.
type Detector interface {
	Detect(ref *reference.Reference, rows [][]float64, predictions []float64) []Score
}

// Source is the durable log.
type Source interface {
	Served(ctx context.Context, start, end time.Time) ([]source.Served, error)
	Window(ctx context.Context, model string, version int, start, end time.Time) ([]source.Prediction, error)
	Labelled(ctx context.Context, model string, version int, start, end time.Time, labelStream, eventIDField, labelField string, horizon time.Duration) ([]source.Labelled, error)
	LastWindowEnd(ctx context.Context, model string, version int, kind string) (time.Time, error)
	// SecondCounts counts one version's predictions per second in [start, end), seconds
	// without any left out, ascending.
	SecondCounts(ctx context.Context, model string, version int, start, end time.Time) ([]source.SecondCount, error)
	// Windows lists the windows of a kind evaluated for a version that end after since.
	Windows(ctx context.Context, model string, version int, kind string, since time.Time) ([]source.Span, error)
}

// References loads a version's reference.
type References interface {
	Get(ctx context.Context, model string, version int) (*reference.Reference, error)
}

// Sink stores results and decided events.
type Sink interface {
	WriteScores(ctx context.Context, w Window, scores []Score) error
	WritePerformance(ctx context.Context, w Window, metrics map[string]float64) error
	// Verdicts returns the drift verdicts (true: drifted) of the last n windows of a kind
	// that end at or before end, newest first.
	Verdicts(ctx context.Context, model string, version int, kind string, end time.Time, n int) ([]bool, error)
	// LastEvent is when the model's newest drift event of a kind was detected (zero: none).
	LastEvent(ctx context.Context, model, kind string) (time.Time, error)
	RecordEvent(ctx context.Context, ev schemas.DriftEvent) error
}

// Window is one version's stretch of traffic.
type Window struct {
	Model      string
	Version    int
	Start, End time.Time
	N          int
}

// Labels says how a model's labels are found (from its training spec).
type Labels struct {
	Stream, EventIDField, Field string
	Horizon                     time.Duration
}

// Config tunes the evaluator.
type Config struct {
	Window time.Duration // tumbling window size (event time)
	// Count, when positive, makes windows of predictions instead: a window closes at the
	// end of the first whole second by which it holds at least Count predictions, so that
	// window bounds stay whole seconds (as stored) and a restart finds the same windows.
	Count       int
	Grace       time.Duration // how long after a window's end its predictions may still land
	MinN        int           // no verdict below this many predictions
	Lookback    time.Duration // how far back a (re)started monitor evaluates
	Persist     int           // k: drifted windows among the last n …
	Of          int           // n
	Cooldown    time.Duration // after an event, none for the same model and kind meanwhile
	LabelsFor   func(model string) (Labels, bool)
	PerfRecheck time.Duration // windows this recent get their quality recomputed as labels arrive
	MinLabels   int           // quality and concept drift need this many labelled predictions
}

// Evaluator is the monitor's window loop.
type Evaluator struct {
	cfg    Config
	src    Source
	refs   References
	detect Detector
	sink   Sink
	now    func() time.Time
	log    *zap.Logger
}

// New returns an evaluator.
func New(cfg Config, src Source, refs References, detect Detector, sink Sink, now func() time.Time, log *zap.Logger) *Evaluator {
	return &Evaluator{cfg: cfg, src: src, refs: refs, detect: detect, sink: sink, now: now, log: log}
}

// Run ticks every interval until ctx ends. A failed tick is logged and retried next tick.
func (e *Evaluator) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("evaluation tick failed; retrying next tick", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick evaluates every window that closed and was not evaluated yet.
func (e *Evaluator) Tick(ctx context.Context) error {
	w := e.grid()
	closed := e.now().Add(-e.cfg.Grace).Truncate(w) // windows ending at or before this are complete
	from := closed.Add(-e.cfg.Lookback).Truncate(w)
	served, err := e.src.Served(ctx, from, closed)
	if err != nil {
		return err
	}
	for _, sv := range served {
		if err := e.version(ctx, sv, from, closed); err != nil {
			e.log.Warn("evaluate a model version", zap.String("model", sv.Model), zap.Int("version", sv.Version), zap.Error(err))
		}
	}
	return nil
}

func (e *Evaluator) version(ctx context.Context, sv source.Served, from, closed time.Time) error {
	ref, err := e.refs.Get(ctx, sv.Model, sv.Version)
	if err != nil {
		return err
	}
	last, err := e.src.LastWindowEnd(ctx, sv.Model, sv.Version, Data)
	if err != nil {
		return err
	}
	// resume after the last window written, or at the window of the version's first
	// prediction in the range (no rows for the empty windows before it)
	start := from
	if first := sv.First.Truncate(e.grid()); first.After(start) {
		start = first
	}
	if last.After(start) {
		start = last
	}
	// A window is complete once its predictions have landed: after a restart, or while the
	// landing catches up, the clock is ahead of what ClickHouse holds, and a window scored
	// early would be scored on part of its traffic and never again.
	if landed := sv.Last.Truncate(e.grid()); !sv.Last.IsZero() && landed.Before(closed) {
		closed = landed
	}
	windows, err := e.dataWindows(ctx, sv, start, closed)
	if err != nil {
		return err
	}
	for _, w := range windows {
		if err := e.dataWindow(ctx, ref, w); err != nil {
			return err
		}
	}
	if labels, ok := e.cfg.LabelsFor(sv.Model); ok {
		windows, err := e.qualityWindows(ctx, sv, from, closed)
		if err != nil {
			return err
		}
		for _, w := range windows {
			if err := e.qualityWindow(ctx, ref, labels, w); err != nil {
				return err
			}
		}
	}
	return nil
}

// grid is what window bounds are multiples of: the window size, or a second for count
// windows.
func (e *Evaluator) grid() time.Duration {
	if e.cfg.Count > 0 {
		return time.Second
	}
	return e.cfg.Window
}

// dataWindows are the version's windows from start that closed by closed.
func (e *Evaluator) dataWindows(ctx context.Context, sv source.Served, start, closed time.Time) ([]Window, error) {
	var out []Window
	if e.cfg.Count <= 0 {
		for ws := start; !ws.Add(e.cfg.Window).After(closed); ws = ws.Add(e.cfg.Window) {
			out = append(out, Window{Model: sv.Model, Version: sv.Version, Start: ws, End: ws.Add(e.cfg.Window)})
		}
		return out, nil
	}
	if !start.Before(closed) {
		return nil, nil
	}
	counts, err := e.src.SecondCounts(ctx, sv.Model, sv.Version, start, closed)
	if err != nil {
		return nil, err
	}
	ws, n := start, 0
	for _, c := range counts {
		if n += c.N; n >= e.cfg.Count {
			end := c.Second.Add(time.Second)
			out = append(out, Window{Model: sv.Model, Version: sv.Version, Start: ws, End: end})
			ws, n = end, 0
		}
	}
	return out, nil
}

// qualityWindows are the windows whose quality is (re)computed as labels arrive: those of
// the last PerfRecheck — on the time grid, or for count windows the ones evaluated.
func (e *Evaluator) qualityWindows(ctx context.Context, sv source.Served, from, closed time.Time) ([]Window, error) {
	since := closed.Add(-e.cfg.PerfRecheck)
	if since.Before(from) {
		since = from
	}
	var out []Window
	if e.cfg.Count <= 0 {
		for ws := since.Truncate(e.cfg.Window); !ws.Add(e.cfg.Window).After(closed); ws = ws.Add(e.cfg.Window) {
			if !ws.Before(from) {
				out = append(out, Window{Model: sv.Model, Version: sv.Version, Start: ws, End: ws.Add(e.cfg.Window)})
			}
		}
		return out, nil
	}
	spans, err := e.src.Windows(ctx, sv.Model, sv.Version, Data, since)
	if err != nil {
		return nil, err
	}
	for _, sp := range spans {
		out = append(out, Window{Model: sv.Model, Version: sv.Version, Start: sp.Start, End: sp.End})
	}
	return out, nil
}

// dataWindow scores one window's inputs and predictions. A window below MinN gets one row
// saying so (method "n"), which also marks it evaluated.
func (e *Evaluator) dataWindow(ctx context.Context, ref *reference.Reference, w Window) error {
	preds, err := e.src.Window(ctx, w.Model, w.Version, w.Start, w.End)
	if err != nil {
		return err
	}
	w.N = len(preds)
	if w.N < e.cfg.MinN {
		return e.sink.WriteScores(ctx, w, []Score{{Kind: Data, Feature: "", Method: "n", Score: float64(w.N), Threshold: float64(e.cfg.MinN), PValue: math.NaN()}})
	}
	rows := make([][]float64, len(preds))
	scores := make([]float64, len(preds))
	for i, p := range preds {
		row := make([]float64, len(ref.Encoders))
		for j, enc := range ref.Encoders {
			v, err := enc.Encode(p.Features[ref.Artifact.Signature[j].Name])
			if err != nil {
				v = math.NaN()
			}
			row[j] = v
		}
		rows[i], scores[i] = row, p.Score
	}
	results := e.detect.Detect(ref, rows, scores)
	if err := e.sink.WriteScores(ctx, w, results); err != nil {
		return err
	}
	for _, kind := range []string{Data, Prediction} {
		if err := e.decide(ctx, w, kind, results); err != nil {
			return err
		}
	}
	return nil
}

// qualityWindow writes the window's quality from the labels arrived so far and scores
// concept drift. It is recomputed while labels keep arriving (rows are replaced).
func (e *Evaluator) qualityWindow(ctx context.Context, ref *reference.Reference, labels Labels, w Window) error {
	got, err := e.src.Labelled(ctx, w.Model, w.Version, w.Start, w.End, labels.Stream, labels.EventIDField, labels.Field, labels.Horizon)
	if err != nil {
		return err
	}
	w.N = len(got)
	if w.N < e.cfg.MinLabels {
		return nil
	}
	y, s := make([]float64, w.N), make([]float64, w.N)
	for i, l := range got {
		y[i], s[i] = l.Label, l.Score
	}
	m := concept.Metrics(ref.Artifact.Task, y, s, ref.Artifact.Threshold)
	m["n"] = float64(w.N)
	if err := e.sink.WritePerformance(ctx, w, m); err != nil {
		return err
	}
	holdout, ok := ref.Artifact.Metrics["auc"]
	auc, have := m["auc"]
	if !ok || !have {
		return nil
	}
	pos, neg := concept.Counts(y)
	floor := concept.AUCFloor(holdout, pos, neg)
	if math.IsNaN(floor) {
		return nil
	}
	sc := []Score{{Kind: Concept, Feature: "auc", Method: "hanley_mcneil", Score: auc, Threshold: floor, PValue: math.NaN(), Drifted: auc < floor}}
	if err := e.sink.WriteScores(ctx, w, sc); err != nil {
		return err
	}
	return e.decide(ctx, w, Concept, sc)
}

// decide records a drift event when this window drifted, at least Persist of the last Of
// windows (this one included) did, and the cooldown has passed.
func (e *Evaluator) decide(ctx context.Context, w Window, kind string, results []Score) error {
	var drifted []Score
	for _, r := range results {
		if r.Kind == kind && r.Drifted {
			drifted = append(drifted, r)
		}
	}
	verdict := Score{Kind: kind, Feature: "", Method: "verdict", Score: float64(len(drifted)), Threshold: 1, PValue: math.NaN(), Drifted: len(drifted) > 0}
	if kind != Concept {
		// the concept verdict is the auc row itself; data and prediction get a summary row
		if err := e.sink.WriteScores(ctx, w, []Score{verdict}); err != nil {
			return err
		}
	}
	if len(drifted) == 0 {
		return nil
	}
	recent, err := e.sink.Verdicts(ctx, w.Model, w.Version, kind, w.End, e.cfg.Of)
	if err != nil {
		return err
	}
	count := 0
	for _, d := range recent {
		if d {
			count++
		}
	}
	if count < e.cfg.Persist {
		return nil
	}
	lastEvent, err := e.sink.LastEvent(ctx, w.Model, kind)
	if err != nil {
		return err
	}
	if !lastEvent.IsZero() && w.End.Sub(lastEvent) < e.cfg.Cooldown && !w.End.Before(lastEvent) {
		return nil
	}
	return e.sink.RecordEvent(ctx, Event(w, kind, drifted, e.now()))
}

// Event builds the drift event of a window; its id is a hash of what identifies the window,
// so recomputing the window (after a restart) yields the same id.
func Event(w Window, kind string, drifted []Score, detectedAt time.Time) schemas.DriftEvent {
	sort.Slice(drifted, func(i, j int) bool { return excess(drifted[i]) > excess(drifted[j]) })
	top := drifted[0]
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s\x00%d", w.Model, w.Version, kind, w.End.UnixMilli())))
	ev := schemas.DriftEvent{ID: "drift-" + hex.EncodeToString(h[:12]), Model: w.Model, Version: w.Version, Kind: schemas.DriftKind(kind),
		Feature: top.Feature, Method: top.Method, Score: top.Score, Threshold: top.Threshold,
		Window: schemas.DriftWindow{Start: w.Start.UTC(), End: w.End.UTC(), N: int64(w.N)}, DetectedAt: detectedAt.UTC()}
	for _, d := range drifted {
		f := schemas.DriftedFeature{Feature: d.Feature, Method: d.Method, Score: d.Score, Threshold: d.Threshold}
		if !math.IsNaN(d.PValue) {
			f.PValue = d.PValue
		}
		ev.Features = append(ev.Features, f)
	}
	return ev
}

// excess is how far a score is past its threshold, relative to the threshold (for concept
// drift, below it).
func excess(s Score) float64 {
	if s.Kind == Concept {
		return (s.Threshold - s.Score) / math.Max(math.Abs(s.Threshold), 1e-12)
	}
	return (s.Score - s.Threshold) / math.Max(math.Abs(s.Threshold), 1e-12)
}
