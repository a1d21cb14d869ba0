package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
	"github.com/flywheel-ml/flywheel/services/trainer/runs"
)

// Artifact paths under a registry run's artifact root.
const (
	SnapshotPath = "dataset/training_set.parquet"
	SpecPath     = "spec.json" // the training spec as the run used it
	ModelDir     = "model"
	ModelPath    = ModelDir + "/model.flywheel"
)

// Tags the run records for lineage and for anyone reading the run in an MLflow UI.
const (
	TagTrainerRun = "flywheel.trainer_run"
	TagTrigger    = "flywheel.trigger"
	TagTriggerAt  = "flywheel.trigger_at" // the trigger's time (a drift event's detection time), RFC 3339
	TagCoalesced  = "flywheel.coalesced"  // drift event ids folded into the run: a JSON array, newest within 8,000 bytes (CoalescedTag)
	TagGates      = "flywheel.gates"
	TagOutcome    = "flywheel.outcome"
)

// Pipeline executes runs.
type Pipeline struct {
	specs       map[string]*modelspec.Spec
	events      EventLog
	features    dataset.FeatureSource
	registry    Registry
	learner     Learner
	evaluate    Evaluator
	book        *runs.Book
	codeVersion string
	now         func() time.Time
	sleep       func(time.Duration) <-chan time.Time
	log         *zap.Logger

	recordMu sync.Mutex        // one TagCoalesced write at a time
	recorded map[string]string // run id → the TagCoalesced value the registry holds
}

// Deps are a pipeline's collaborators.
type Deps struct {
	Specs       map[string]*modelspec.Spec
	Events      EventLog
	Features    dataset.FeatureSource
	Registry    Registry
	Learner     Learner
	Evaluate    Evaluator
	Book        *runs.Book
	CodeVersion string
	Now         func() time.Time
	Sleep       func(time.Duration) <-chan time.Time // time.After unless a test needs otherwise
	Log         *zap.Logger
}

// New returns a pipeline.
func New(d Deps) *Pipeline {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Sleep == nil {
		d.Sleep = time.After
	}
	return &Pipeline{specs: d.Specs, events: d.Events, features: d.Features, registry: d.Registry, learner: d.Learner,
		evaluate: d.Evaluate, book: d.Book, codeVersion: d.CodeVersion, now: d.Now, sleep: d.Sleep, log: d.Log.Named("pipeline"),
		recorded: map[string]string{}}
}

// Outcome is what a finished run decided.
type Outcome struct {
	Version       int                    `json:"version"`
	Promoted      bool                   `json:"promoted"`
	Alias         string                 `json:"alias"`
	Gates         []modelspec.GateResult `json:"gates"`
	Metrics       map[string]float64     `json:"metrics"`
	Champion      map[string]float64     `json:"champion_metrics,omitempty"`
	ChampionVer   int                    `json:"champion_version,omitempty"`
	Dataset       client.DatasetVersion  `json:"dataset"`
	DatasetSum    dataset.Summary        `json:"dataset_summary"`
	ArtifactHash  string                 `json:"artifact_sha256"`
	RegistryRunID string                 `json:"registry_run_id"`
}

// Execute carries out the run and records its stages and result in the book. A failure at
// any stage ends the run as failed, with the reason, and the registry run as FAILED.
func (p *Pipeline) Execute(ctx context.Context, run *runs.Run) error {
	_, err := p.execute(ctx, run)
	if err != nil {
		p.book.Update(run.ID, func(r *runs.Run) { r.Stage, r.Error = runs.Failed, err.Error() })
	}
	return err
}

func (p *Pipeline) stage(run *runs.Run, stage string) {
	p.book.Update(run.ID, func(r *runs.Run) { r.Stage = stage })
	p.log.Info("run stage", zap.String("run", run.ID), zap.String("model", run.Model), zap.String("stage", stage))
}

// MaxTagBytes is the registry's (MLflow's) limit on a tag value.
const MaxTagBytes = 8000

// CoalescedTag is the value of TagCoalesced for a run: the ids of the drift events folded
// into it, as a JSON array of strings, oldest first, keeping the newest that fit in one tag
// (MaxTagBytes; about 240 of the monitor's 30-character ids). One bounded tag rather than a
// tag per id: a run's tags are read whole on every search, and MLflow caps a batch at 100
// tags. Dropping the oldest ids is safe for the cooldown: an event coalesced into a run was
// detected within that run's cooldown, and the book compares an event with the model's newest
// drift run, which is no older; so after a restart it is still coalesced, only as "coalesced"
// rather than "duplicate".
func CoalescedTag(r *runs.Run) string {
	var ids []string
	for _, t := range r.Coalesced {
		if t.EventID != "" {
			ids = append(ids, t.EventID)
		}
	}
	// Newest first until the next id no longer fits: "[" + `"id"` joined by "," + "]".
	size, from := 2, len(ids)
	for i := len(ids) - 1; i >= 0; i-- {
		n := len(jsonString(ids[i]))
		if i < len(ids)-1 {
			n++ // the comma
		}
		if size+n > MaxTagBytes {
			break
		}
		size, from = size+n, i
	}
	if from == len(ids) {
		return "[]"
	}
	parts := make([]string, 0, len(ids)-from)
	for _, id := range ids[from:] {
		parts = append(parts, jsonString(id))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// ParseCoalesced reads a TagCoalesced value: a JSON array of ids, or the comma-separated
// list that trainers before it wrote.
func ParseCoalesced(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if strings.HasPrefix(v, "[") {
		var ids []string
		if err := json.Unmarshal([]byte(v), &ids); err != nil {
			return nil, fmt.Errorf("tag %s: %w", TagCoalesced, err)
		}
		return ids, nil
	}
	return strings.Split(v, ","), nil
}

func jsonString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// RecordCoalesced writes the drift events folded into the run to its registry run (tag
// TagCoalesced), so that after a restart they are still known. It writes the book's record as
// it is when the write begins, one write at a time, and skips a write that would change
// nothing; so the last call after a fold leaves the fold recorded, whatever the order of
// concurrent calls. A run without a registry run yet records nothing: the pipeline calls this
// as soon as it has created the registry run.
func (p *Pipeline) RecordCoalesced(ctx context.Context, runID string) error {
	p.recordMu.Lock()
	defer p.recordMu.Unlock()
	r, ok := p.book.Get(runID)
	if !ok || r.RegistryRunID == "" {
		return nil
	}
	v := CoalescedTag(r)
	if v == p.recorded[runID] || (v == "[]" && p.recorded[runID] == "") {
		return nil
	}
	if err := p.registry.LogBatch(ctx, r.RegistryRunID, nil, nil, map[string]string{TagCoalesced: v}); err != nil {
		return fmt.Errorf("record the drift events coalesced into run %s: %w", runID, err)
	}
	if len(p.recorded) >= 4096 { // forget runs the book forgot
		for id := range p.recorded {
			if _, ok := p.book.Get(id); !ok {
				delete(p.recorded, id)
			}
		}
	}
	p.recorded[runID] = v
	return nil
}

func triggerString(t runs.Trigger) string {
	if t.EventID != "" {
		return t.Kind + ":" + t.EventID
	}
	return t.Kind
}

func (p *Pipeline) execute(ctx context.Context, run *runs.Run) (out Outcome, err error) {
	spec, ok := p.specs[run.Model]
	if !ok {
		return out, fmt.Errorf("%w %q", runs.ErrUnknownModel, run.Model)
	}
	p.stage(run, runs.Dataset)
	if run.Trigger.Kind == runs.Drift && spec.Training.FreshRows > 0 {
		if err := p.waitFresh(ctx, spec, run); err != nil {
			return out, err
		}
	}
	end := p.now().UTC()
	window := dataset.Window{From: end.Add(-time.Duration(spec.Training.Window)), To: end}
	events, labels, err := p.events.Load(ctx, spec, window)
	if err != nil {
		return out, err
	}
	examples, joined, err := dataset.Join(spec, events, labels)
	if err != nil {
		return out, err
	}
	if len(examples) == 0 {
		return out, fmt.Errorf("%w: no labelled events: %d %s events in the window and %d labels on %s, none naming one of them (%+v)",
			dataset.ErrUnfit, len(events), spec.PredictionStream, len(labels), spec.Label.Stream, joined)
	}
	built, err := dataset.Build(ctx, spec, examples, p.features)
	if err != nil {
		return out, err
	}
	sum, err := dataset.Check(spec, built)
	if err != nil {
		return out, err
	}
	out.DatasetSum = sum
	train, test, err := dataset.Split(spec, built)
	if err != nil {
		return out, err
	}
	snapshot, digest, err := dataset.WriteSnapshot(built)
	if err != nil {
		return out, err
	}

	exp, err := p.registry.EnsureExperiment(ctx, spec.Name)
	if err != nil {
		return out, fmt.Errorf("registry experiment: %w", err)
	}
	rr, err := p.registry.CreateRun(ctx, exp, "retrain-"+run.ID, map[string]string{TagTrainerRun: run.ID, TagTrigger: triggerString(run.Trigger),
		TagTriggerAt: run.Trigger.At.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return out, fmt.Errorf("registry run: %w", err)
	}
	out.RegistryRunID = rr.ID
	p.book.Update(run.ID, func(r *runs.Run) { r.RegistryRunID = rr.ID })
	// Drift events folded into the run until now; later ones are recorded as they come
	// (triggers.Intake), and once more at the end in case this write failed.
	if err := p.RecordCoalesced(ctx, run.ID); err != nil {
		p.log.Warn("coalesced drift events not recorded yet", zap.String("run", run.ID), zap.Error(err))
	}
	defer func() {
		if err := p.RecordCoalesced(context.WithoutCancel(ctx), run.ID); err != nil {
			p.log.Warn("coalesced drift events not recorded", zap.String("run", run.ID), zap.Error(err))
		}
		status := "FINISHED"
		if err != nil {
			status = "FAILED"
			_ = p.registry.LogBatch(context.WithoutCancel(ctx), rr.ID, nil, nil, map[string]string{TagOutcome: "failed: " + truncate(err.Error(), 7000)})
		}
		if endErr := p.registry.EndRun(context.WithoutCancel(ctx), rr.ID, status); endErr != nil && err == nil {
			err = fmt.Errorf("end registry run: %w", endErr)
		}
	}()
	if err := p.registry.PutArtifact(ctx, rr.ArtifactURI, SnapshotPath, snapshot); err != nil {
		return out, fmt.Errorf("store the dataset snapshot: %w", err)
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return out, fmt.Errorf("encode the spec: %w", err)
	}
	if err := p.registry.PutArtifact(ctx, rr.ArtifactURI, SpecPath, specJSON); err != nil {
		return out, fmt.Errorf("store the spec: %w", err)
	}
	ds, err := p.registry.RecordDataset(ctx, client.DatasetVersion{Name: spec.Name, Digest: digest,
		SourceStreams: []string{spec.PredictionStream, spec.Label.Stream}, Start: time.UnixMilli(sum.FromMS).UTC(), End: time.UnixMilli(sum.ToMS).UTC(),
		FeatureViews: built.ViewVersions, RowCount: sum.Rows})
	if err != nil {
		return out, fmt.Errorf("record the dataset version: %w", err)
	}
	out.Dataset = ds
	p.book.Update(run.ID, func(r *runs.Run) { r.DatasetVersion = ds.ID })
	params := map[string]string{"algorithm": spec.Algorithm.Name, "seed": strconv.FormatUint(spec.Training.Seed, 10),
		"train_rows": strconv.Itoa(len(train)), "test_rows": strconv.Itoa(len(test)), "dataset_version": ds.ID,
		"window_start": window.From.Format(time.RFC3339), "window_end": window.To.Format(time.RFC3339)}
	for k, v := range spec.Algorithm.Params {
		params["param."+k] = fmt.Sprint(v)
	}
	if err := p.registry.LogBatch(ctx, rr.ID, nil, params, nil); err != nil {
		return out, err
	}

	p.stage(run, runs.Training)
	var progress []client.Metric
	model, err := p.learner.Train(ctx, spec, built, train, spec.Training.Seed, func(step int, m map[string]float64) {
		ts := p.now().UnixMilli()
		for k, v := range m {
			progress = append(progress, client.Metric{Key: k, Value: v, Timestamp: ts, Step: int64(step)})
		}
	})
	if err != nil {
		return out, fmt.Errorf("train %s: %w", spec.Algorithm.Name, err)
	}
	if err := p.registry.LogBatch(ctx, rr.ID, progress, nil, nil); err != nil {
		return out, err
	}

	p.stage(run, runs.Evaluate)
	labelsTest := make([]float64, len(test))
	for i, r := range test {
		labelsTest[i] = built.Frame.Label[r]
	}
	scores, err := model.Score(built, test)
	if err != nil {
		return out, fmt.Errorf("score the holdout: %w", err)
	}
	out.Metrics = p.evaluate(spec.Task, labelsTest, scores, spec.Threshold)
	aliases, err := p.registry.Aliases(ctx, spec.Name)
	if err != nil {
		return out, fmt.Errorf("read aliases: %w", err)
	}
	if v, ok := aliases["champion"]; ok {
		champ, err := p.champion(ctx, spec.Name, v)
		if err != nil {
			return out, err
		}
		cs, err := champ.Score(built, test)
		if err != nil {
			return out, fmt.Errorf("re-score champion version %d on the holdout: %w", v, err)
		}
		out.Champion, out.ChampionVer = p.evaluate(spec.Task, labelsTest, cs, spec.Threshold), v
	}
	metrics := make([]client.Metric, 0, 2*len(out.Metrics))
	ts := p.now().UnixMilli()
	for k, v := range out.Metrics {
		metrics = append(metrics, client.Metric{Key: "test_" + k, Value: v, Timestamp: ts})
	}
	for k, v := range out.Champion {
		metrics = append(metrics, client.Metric{Key: "champion_test_" + k, Value: v, Timestamp: ts})
	}
	if err := p.registry.LogBatch(ctx, rr.ID, metrics, nil, nil); err != nil {
		return out, err
	}

	p.stage(run, runs.Register)
	artifact, err := model.Encode(out.Metrics)
	if err != nil {
		return out, fmt.Errorf("encode the model artifact: %w", err)
	}
	hash := sha256.Sum256(artifact)
	out.ArtifactHash = hex.EncodeToString(hash[:])
	if err := p.registry.PutArtifact(ctx, rr.ArtifactURI, ModelPath, artifact); err != nil {
		return out, fmt.Errorf("store the model artifact: %w", err)
	}
	if err := p.registry.EnsureModel(ctx, spec.Name); err != nil {
		return out, fmt.Errorf("registered model: %w", err)
	}
	version, err := p.registry.CreateVersion(ctx, spec.Name, client.NewVersion{Source: rr.ArtifactURI + "/" + ModelDir, RunID: rr.ID,
		Tags: map[string]string{"flywheel.artifact_sha256": out.ArtifactHash},
		Lineage: &client.Lineage{RunID: rr.ID, DatasetVersion: ds.ID, FeatureViews: built.ViewVersions, CodeVersion: p.codeVersion,
			Trigger: triggerString(run.Trigger)},
		Signature: model.Signature(), Profile: model.Profile()})
	if err != nil {
		return out, fmt.Errorf("register the version: %w", err)
	}
	out.Version = version.Version
	p.book.Update(run.ID, func(r *runs.Run) { r.ModelVersion = version.Version })

	p.stage(run, runs.Gates)
	out.Gates = modelspec.Evaluate(spec.Gates, out.Metrics, out.Champion)
	passed := modelspec.Passed(out.Gates)
	gates, _ := json.Marshal(out.Gates)
	out.Alias = "challenger"
	reason := fmt.Sprintf("run %s (%s): ", run.ID, triggerString(run.Trigger))
	switch {
	case passed && spec.Promotion == modelspec.Auto:
		out.Alias, out.Promoted = "champion", true
		reason += "every gate passed"
	case passed:
		reason += "every gate passed; promotion is manual"
	default:
		reason += "gates failed: " + failedGates(out.Gates)
	}
	if err := p.registry.MoveAlias(ctx, spec.Name, out.Alias, version.Version, reason); err != nil {
		return out, fmt.Errorf("move %s to version %d: %w", out.Alias, version.Version, err)
	}
	outcome := "promoted to champion"
	if !out.Promoted {
		outcome = "left as challenger: " + reason
	}
	final := map[string]string{TagGates: truncate(string(gates), 7900), TagOutcome: truncate(outcome, 7900)}
	if err := p.registry.LogBatch(ctx, rr.ID, nil, nil, final); err != nil {
		return out, err
	}
	p.book.Update(run.ID, func(r *runs.Run) { r.Stage, r.Promoted = runs.Succeeded, out.Promoted })
	p.log.Info("run finished", zap.String("run", run.ID), zap.String("model", spec.Name), zap.Int("version", version.Version),
		zap.Bool("promoted", out.Promoted), zap.String("outcome", outcome))
	return out, nil
}

// champion loads the champion's model from its artifact.
func (p *Pipeline) champion(ctx context.Context, model string, version int) (Model, error) {
	v, err := p.registry.GetVersion(ctx, model, version)
	if err != nil {
		return nil, fmt.Errorf("read champion version %d: %w", version, err)
	}
	data, err := p.registry.GetArtifact(ctx, v.Source, "model.flywheel")
	if err != nil {
		return nil, fmt.Errorf("read champion version %d's artifact: %w", version, err)
	}
	m, err := p.learner.Load(data)
	if err != nil {
		return nil, fmt.Errorf("load champion version %d: %w", version, err)
	}
	return m, nil
}

func failedGates(results []modelspec.GateResult) string {
	var s string
	for _, r := range results {
		for _, f := range r.Failures {
			if s != "" {
				s += "; "
			}
			s += r.Metric + " " + f
		}
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// freshPoll is how often a drift-triggered run counts the labelled examples after the drift.
const freshPoll = 2 * time.Second

// defaultFreshWait bounds the wait for fresh labels when the spec names none.
const defaultFreshWait = time.Hour

// waitFresh waits until spec's FreshRows labelled examples have event times after the
// drift's detection, or FreshWait has passed (then the run goes on with what there is).
func (p *Pipeline) waitFresh(ctx context.Context, spec *modelspec.Spec, run *runs.Run) error {
	since := run.Trigger.At
	wait := time.Duration(spec.Training.FreshWait)
	if wait <= 0 {
		wait = defaultFreshWait
	}
	deadline := p.now().Add(wait)
	for {
		events, labels, err := p.events.Load(ctx, spec, dataset.Window{From: since, To: p.now().UTC()})
		if err != nil {
			return err
		}
		examples, _, err := dataset.Join(spec, events, labels)
		if err != nil {
			return err
		}
		if len(examples) >= spec.Training.FreshRows {
			p.log.Info("fresh labelled data after the drift", zap.String("run", run.ID), zap.Int("examples", len(examples)))
			return nil
		}
		if !p.now().Before(deadline) {
			p.log.Warn("training without the fresh labelled data asked for", zap.String("run", run.ID),
				zap.Int("examples", len(examples)), zap.Int("fresh_rows", spec.Training.FreshRows), zap.Duration("waited", wait))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.sleep(freshPoll):
		}
	}
}
