package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/flywheel-ml/flywheel/schemas"
)

// Run statuses, as MLflow names them.
var runStatuses = map[string]bool{"RUNNING": true, "SCHEDULED": true, "FINISHED": true, "FAILED": true, "KILLED": true}

// MLflow's log-batch limits.
const (
	MaxBatchMetrics = 1000
	MaxBatchParams  = 100
	MaxBatchTags    = 100
	maxBatchTotal   = 1000
)

// RunNameTag is the tag MLflow mirrors the run name into.
const RunNameTag = "mlflow.runName"

// Metric is one metric point; a run keeps the latest per key, ClickHouse the history.
type Metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

// newer reports whether m replaces cur as a run's latest value: MLflow orders points by
// (step, timestamp, value).
func (m Metric) newer(cur Metric) bool {
	if m.Step != cur.Step {
		return m.Step > cur.Step
	}
	if m.Timestamp != cur.Timestamp {
		return m.Timestamp > cur.Timestamp
	}
	return m.Value > cur.Value
}

// Dataset is an MLflow dataset description.
type Dataset struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type,omitempty"`
	Source     string `json:"source,omitempty"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

// DatasetInput is a dataset a run used, with tags such as mlflow.data.context=training.
type DatasetInput struct {
	Dataset Dataset           `json:"dataset"`
	Tags    map[string]string `json:"tags,omitempty"`
}

// Run is an MLflow run: its info, params, tags, latest metrics and inputs.
type Run struct {
	ID             string            `json:"run_id"`
	ExperimentID   string            `json:"experiment_id"`
	Name           string            `json:"run_name"`
	UserID         string            `json:"user_id"`
	Status         string            `json:"status"`
	StartTime      int64             `json:"start_time"`
	EndTime        *int64            `json:"end_time,omitempty"`
	ArtifactURI    string            `json:"artifact_uri"`
	LifecycleStage string            `json:"lifecycle_stage"`
	DeletedTime    int64             `json:"deleted_time,omitempty"`
	Params         map[string]string `json:"params,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	Metrics        map[string]Metric `json:"metrics,omitempty"`
	Inputs         []DatasetInput    `json:"inputs,omitempty"`
}

func runKey(id string) string { return "r." + id }

// MetricBatch is one message on the metrics stream: the points of one log call.
type MetricBatch struct {
	RunID   string   `json:"run_id"`
	Metrics []Metric `json:"metrics"`
}

// CreateRun starts a run in an active experiment. An empty name gets a generated one.
func (s *Store) CreateRun(ctx context.Context, r Run) (Run, error) {
	exp, err := s.GetExperiment(ctx, r.ExperimentID)
	if err != nil {
		return Run{}, err
	}
	if exp.LifecycleStage != StageActive {
		return Run{}, invalidf("the experiment %s must be in the 'active' state, it is %s", exp.ID, exp.LifecycleStage)
	}
	for k, v := range r.Tags {
		if err := validTag(k, v); err != nil {
			return Run{}, err
		}
	}
	if r.Name == "" {
		r.Name = r.Tags[RunNameTag]
	}
	if r.Name == "" {
		r.Name = generatedRunName()
	}
	if r.Tags == nil {
		r.Tags = map[string]string{}
	}
	r.Tags[RunNameTag] = r.Name
	if r.UserID == "" {
		r.UserID = r.Tags["mlflow.user"]
	}
	r.ID = newID()
	r.Status, r.LifecycleStage = "RUNNING", StageActive
	if r.StartTime == 0 {
		r.StartTime = s.nowMillis()
	}
	r.ArtifactURI = exp.ArtifactLocation + "/" + r.ID + "/artifacts"
	rev, err := createJSON(ctx, s.runs, runKey(r.ID), "run "+r.ID, r)
	if err != nil {
		return Run{}, err
	}
	s.runCache.put(r, rev)
	s.notify.Notify(ctx, schemas.RegistryEvent{Type: schemas.RegistryRunCreated, ExperimentID: r.ExperimentID, RunID: r.ID, At: s.now().UTC()})
	return r, nil
}

// GetRun returns a run.
func (s *Store) GetRun(ctx context.Context, id string) (Run, error) {
	r, _, err := getJSON[Run](ctx, s.runs, runKey(id), "run "+id)
	if errors.Is(err, ErrNotFound) {
		return r, fmt.Errorf("run '%s' not found: %w", id, ErrNotFound)
	}
	return r, err
}

// updateRun applies change to a run, revision-checked. Changes to a deleted run are refused
// unless allowDeleted (restore).
func (s *Store) updateRun(ctx context.Context, id string, allowDeleted bool, change func(*Run) error) (Run, error) {
	apply := func(r *Run) error {
		if !allowDeleted && r.LifecycleStage != StageActive {
			return invalidf("the run %s must be in the 'active' state, it is %s", id, r.LifecycleStage)
		}
		return change(r)
	}
	if r, rev, ok := s.runCache.get(id); ok {
		// A refusal by a cached document is not trusted (it may be stale): the read path
		// below decides.
		if apply(&r) == nil {
			data, err := json.Marshal(r)
			if err != nil {
				return Run{}, fmt.Errorf("encode run %s: %w", id, err)
			}
			newRev, err := s.runs.kv.Update(ctx, runKey(id), data, rev)
			if err == nil {
				s.runs.written(newRev)
				s.runCache.put(r, newRev)
				return r, nil
			}
			if !conflict(err) {
				return Run{}, fmt.Errorf("update run %s: %w", id, err)
			}
		}
		s.runCache.drop(id)
	}
	r, rev, err := updateJSON(ctx, s.runs, runKey(id), "run "+id, apply)
	if errors.Is(err, ErrNotFound) {
		return r, fmt.Errorf("run '%s' not found: %w", id, ErrNotFound)
	}
	if err == nil {
		s.runCache.put(r, rev)
	}
	return r, err
}

// RunUpdate is what runs/update may change; nil fields are left alone.
type RunUpdate struct {
	Status  *string
	EndTime *int64
	Name    *string
}

// UpdateRun changes a run's status, end time or name.
func (s *Store) UpdateRun(ctx context.Context, id string, u RunUpdate) (Run, error) {
	if u.Status != nil && !runStatuses[*u.Status] {
		return Run{}, invalidf("invalid run status '%s': use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED", *u.Status)
	}
	r, err := s.updateRun(ctx, id, false, func(r *Run) error {
		if u.Status != nil {
			r.Status = *u.Status
		}
		if u.EndTime != nil {
			r.EndTime = u.EndTime
		}
		if u.Name != nil && *u.Name != "" {
			r.Name = *u.Name
			r.Tags[RunNameTag] = *u.Name
		}
		return nil
	})
	if err == nil {
		s.notify.Notify(ctx, schemas.RegistryEvent{Type: schemas.RegistryRunUpdated, ExperimentID: r.ExperimentID, RunID: r.ID, Status: r.Status, At: s.now().UTC()})
	}
	return r, err
}

// SetRunLifecycle soft-deletes or restores a run.
func (s *Store) SetRunLifecycle(ctx context.Context, id, stage string) (Run, error) {
	r, err := s.updateRun(ctx, id, true, func(r *Run) error {
		r.LifecycleStage = stage
		r.DeletedTime = 0
		if stage == StageDeleted {
			r.DeletedTime = s.nowMillis()
		}
		return nil
	})
	if err == nil {
		typ := schemas.RegistryRunDeleted
		if stage == StageActive {
			typ = schemas.RegistryRunRestored
		}
		s.notify.Notify(ctx, schemas.RegistryEvent{Type: typ, ExperimentID: r.ExperimentID, RunID: r.ID, At: s.now().UTC()})
	}
	return r, err
}

// SetRunTag sets a tag; mlflow.runName also renames the run, as in MLflow.
func (s *Store) SetRunTag(ctx context.Context, id, key, value string) (Run, error) {
	return s.LogBatch(ctx, id, nil, nil, map[string]string{key: value})
}

// DeleteRunTag removes a tag; ErrNotFound when the run has no such tag.
func (s *Store) DeleteRunTag(ctx context.Context, id, key string) (Run, error) {
	return s.updateRun(ctx, id, false, func(r *Run) error {
		if _, ok := r.Tags[key]; !ok {
			return fmt.Errorf("no tag with name: %s in run with id %s: %w", key, id, ErrNotFound)
		}
		delete(r.Tags, key)
		return nil
	})
}

// LogInputs records datasets a run used; a dataset already recorded (same name and digest)
// has its tags merged.
func (s *Store) LogInputs(ctx context.Context, id string, inputs []DatasetInput) (Run, error) {
	for _, in := range inputs {
		if in.Dataset.Name == "" || in.Dataset.Digest == "" {
			return Run{}, invalidf("a dataset input needs a name and a digest")
		}
	}
	return s.updateRun(ctx, id, false, func(r *Run) error {
		for _, in := range inputs {
			found := false
			for i := range r.Inputs {
				if r.Inputs[i].Dataset.Name == in.Dataset.Name && r.Inputs[i].Dataset.Digest == in.Dataset.Digest {
					found = true
					if r.Inputs[i].Tags == nil {
						r.Inputs[i].Tags = map[string]string{}
					}
					for k, v := range in.Tags {
						r.Inputs[i].Tags[k] = v
					}
				}
			}
			if !found {
				r.Inputs = append(r.Inputs, in)
			}
		}
		return nil
	})
}

// LogBatch logs metrics, params and tags to an active run within MLflow's limits. Params are
// immutable: logging a param again with another value is refused. The run's latest metrics
// are updated revision-checked, then the points are published to the metrics stream for
// the ClickHouse history; both are durable before LogBatch returns.
func (s *Store) LogBatch(ctx context.Context, id string, metrics []Metric, params, tags map[string]string) (Run, error) {
	if len(metrics) > MaxBatchMetrics || len(params) > MaxBatchParams || len(tags) > MaxBatchTags ||
		len(metrics)+len(params)+len(tags) > maxBatchTotal {
		return Run{}, invalidf("a batch holds at most %d metrics, %d params, %d tags and %d entries in total; got %d, %d and %d",
			MaxBatchMetrics, MaxBatchParams, MaxBatchTags, maxBatchTotal, len(metrics), len(params), len(tags))
	}
	for _, m := range metrics {
		if err := validKey("metric", m.Key); err != nil {
			return Run{}, err
		}
	}
	for k, v := range params {
		if err := validKey("param", k); err != nil {
			return Run{}, err
		}
		if len(v) > maxParamValueLen {
			return Run{}, invalidf("param '%s' value is %d characters, the limit is %d", k, len(v), maxParamValueLen)
		}
	}
	for k, v := range tags {
		if err := validTag(k, v); err != nil {
			return Run{}, err
		}
	}
	r, err := s.updateRun(ctx, id, false, func(r *Run) error {
		for k, v := range params {
			if old, ok := r.Params[k]; ok && old != v {
				return invalidf("changing param values is not allowed. Param with key='%s' was already logged with value='%s' for run ID='%s'. Attempted logging new value '%s'", k, old, id, v)
			}
		}
		if len(params) > 0 && r.Params == nil {
			r.Params = map[string]string{}
		}
		for k, v := range params {
			r.Params[k] = v
		}
		if len(tags) > 0 && r.Tags == nil {
			r.Tags = map[string]string{}
		}
		for k, v := range tags {
			r.Tags[k] = v
			if k == RunNameTag && v != "" {
				r.Name = v
			}
		}
		if len(metrics) > 0 && r.Metrics == nil {
			r.Metrics = map[string]Metric{}
		}
		for _, m := range metrics {
			if cur, ok := r.Metrics[m.Key]; !ok || m.newer(cur) {
				r.Metrics[m.Key] = m
			}
		}
		return nil
	})
	if err != nil || len(metrics) == 0 {
		return r, err
	}
	if _, err := s.PublishMetrics(ctx, MetricBatch{RunID: id, Metrics: metrics}); err != nil {
		return r, err
	}
	return r, nil
}

// PublishMetrics appends points to the metrics stream and returns its sequence.
func (s *Store) PublishMetrics(ctx context.Context, b MetricBatch) (uint64, error) {
	data, err := json.Marshal(b)
	if err != nil {
		return 0, fmt.Errorf("encode metrics of run %s: %w", b.RunID, err)
	}
	ack, err := s.js.Publish(ctx, s.MetricsSubject(), data)
	if err != nil {
		return 0, fmt.Errorf("publish metrics of run %s: %w", b.RunID, err)
	}
	s.metricsSeq.written(ack.Sequence)
	return ack.Sequence, nil
}

// MetricsWritten is the highest metrics-stream sequence this process published.
func (s *Store) MetricsWritten() uint64 { return s.metricsSeq.wrote.Load() }

// Runs streams every run (the projection's rebuild and tests).
func (s *Store) Runs(ctx context.Context) ([]Run, error) {
	return listJSON[Run](ctx, s.runs, "r.*", "runs")
}

var (
	nameAdjectives = []string{"amber", "bold", "brisk", "calm", "clever", "crisp", "daring", "eager", "fleet", "gentle", "keen", "lucid", "nimble", "quiet", "rapid", "sunny", "swift", "vivid", "wise", "zesty"}
	nameNouns      = []string{"badger", "comet", "crane", "falcon", "fox", "heron", "lynx", "otter", "owl", "panda", "raven", "robin", "seal", "sparrow", "tiger", "whale", "wolf", "yak", "zebra", "kite"}
)

// generatedRunName is MLflow-style: adjective-noun-number.
func generatedRunName() string {
	return nameAdjectives[rand.IntN(len(nameAdjectives))] + "-" + nameNouns[rand.IntN(len(nameNouns))] + "-" + strconv.Itoa(rand.IntN(1000))
}

// getRunsConcurrency bounds the KV reads of one GetRuns.
const getRunsConcurrency = 64

// GetRuns reads runs by id, in the order given, with bounded concurrency; ids that no longer
// exist are left out.
func (s *Store) GetRuns(ctx context.Context, ids []string) ([]Run, error) {
	runs := make([]Run, len(ids))
	found := make([]bool, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(getRunsConcurrency)
	for i, id := range ids {
		g.Go(func() error {
			r, err := s.GetRun(gctx, id)
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			runs[i], found[i] = r, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := runs[:0]
	for i, r := range runs {
		if found[i] {
			out = append(out, r)
		}
	}
	return out, nil
}
