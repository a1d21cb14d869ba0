package store_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

func TestExperimentNames(t *testing.T) {
	s := open(t)
	ctx := testenv.Context(t)
	if e, err := s.GetExperiment(ctx, store.DefaultExperimentID); err != nil || e.Name != "Default" {
		t.Fatalf("the Default experiment: %+v %v", e, err)
	}
	a, err := s.CreateExperiment(ctx, "churn models / v2", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RenameExperiment(ctx, a.ID, "churn"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetExperimentByName(ctx, "churn models / v2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the old name must be free after a rename, got %v", err)
	}
	b, err := s.CreateExperiment(ctx, "churn models / v2", "", nil)
	if err != nil || b.ID == a.ID {
		t.Fatalf("reusing a released name: %+v %v", b, err)
	}
	if _, err := s.SetExperimentLifecycle(ctx, a.ID, store.StageDeleted); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateExperiment(ctx, "churn", "", nil); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("a deleted experiment keeps its name (as in MLflow), got %v", err)
	}
	if _, err := s.CreateRun(ctx, store.Run{ExperimentID: a.ID}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("runs cannot start in a deleted experiment, got %v", err)
	}
	if _, err := s.SetExperimentLifecycle(ctx, store.DefaultExperimentID, store.StageDeleted); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("the Default experiment cannot be deleted, got %v", err)
	}
}

func TestRunLatestMetricsAndImmutableParams(t *testing.T) {
	s := open(t)
	ctx := testenv.Context(t)
	r, err := s.CreateRun(ctx, store.Run{ExperimentID: store.DefaultExperimentID})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name == "" || r.Tags[store.RunNameTag] != r.Name {
		t.Fatalf("a generated name mirrored in %s: %+v", store.RunNameTag, r)
	}
	// MLflow's latest value is the greatest (step, timestamp, value), not the last logged.
	for _, m := range []store.Metric{{Key: "auc", Value: 0.9, Step: 5, Timestamp: 10}, {Key: "auc", Value: 0.5, Step: 3, Timestamp: 99},
		{Key: "auc", Value: 0.7, Step: 5, Timestamp: 11}} {
		if _, err := s.LogBatch(ctx, r.ID, []store.Metric{m}, map[string]string{"lr": "0.1"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	r, _ = s.GetRun(ctx, r.ID)
	if got := r.Metrics["auc"]; got.Value != 0.7 || got.Step != 5 {
		t.Fatalf("latest auc: %+v", got)
	}
	if _, err := s.LogBatch(ctx, r.ID, nil, map[string]string{"lr": "0.2"}, nil); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("changing a param must be refused, got %v", err)
	}
	if _, err := s.SetRunTag(ctx, r.ID, store.RunNameTag, "renamed"); err != nil {
		t.Fatal(err)
	}
	if r, _ = s.GetRun(ctx, r.ID); r.Name != "renamed" {
		t.Fatalf("setting %s renames the run: %+v", store.RunNameTag, r)
	}
	if _, err := s.SetRunLifecycle(ctx, r.ID, store.StageDeleted); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LogBatch(ctx, r.ID, []store.Metric{{Key: "auc", Value: 1}}, nil, nil); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a deleted run takes no metrics, got %v", err)
	}
}

func TestModelRenameDeleteAndVersionAliases(t *testing.T) {
	s := open(t)
	ctx := testenv.Context(t)
	if _, err := s.CreateModel(ctx, store.Model{Name: "fraud v1"}); err != nil {
		t.Fatal(err)
	}
	v1, _ := s.CreateVersion(ctx, store.Version{Name: "fraud v1"})
	v2, _ := s.CreateVersion(ctx, store.Version{Name: "fraud v1"})
	if _, err := s.SetAlias(ctx, "fraud v1", "champion", v1.Version, "a", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetAlias(ctx, "fraud v1", "latest", v1.Version, "a", ""); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("'latest' is reserved, got %v", err)
	}
	if _, err := s.RenameModel(ctx, "fraud v1", "fraud"); err != nil {
		t.Fatal(err)
	}
	if a, err := s.GetAlias(ctx, "fraud", "champion"); err != nil || a.Version != v1.Version {
		t.Fatalf("aliases follow a rename: %+v %v", a, err)
	}
	if err := s.DeleteVersion(ctx, "fraud", v1.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAlias(ctx, "fraud", "champion"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting a version deletes its aliases, got %v", err)
	}
	v3, _ := s.CreateVersion(ctx, store.Version{Name: "fraud"})
	if v3.Version != v2.Version+1 {
		t.Fatalf("version numbers are never reused: got %d after %d", v3.Version, v2.Version)
	}
	if err := s.DeleteModel(ctx, "fraud"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateModel(ctx, store.Model{Name: "fraud"}); err != nil {
		t.Fatal(err)
	}
	if vs, err := s.Versions(ctx, "fraud"); err != nil || len(vs) != 0 {
		t.Fatalf("a recreated model starts empty: %v %v", vs, err)
	}
	history, err := s.AliasHistory(ctx, "fraud")
	if err != nil || len(history) != 0 {
		t.Fatalf("a recreated model has its own audit trail: %v %v", history, err)
	}
}

func TestDatasetVersionsAreContentAddressed(t *testing.T) {
	s := open(t)
	ctx := testenv.Context(t)
	a, err := s.CreateDataset(ctx, store.DatasetVersion{Name: "train", SourceStreams: []string{"transactions"}, RowCount: 10})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateDataset(ctx, store.DatasetVersion{Name: "train", SourceStreams: []string{"transactions"}, RowCount: 10})
	if err != nil || b.ID != a.ID {
		t.Fatalf("the same description is one version: %s then %s (%v)", a.ID, b.ID, err)
	}
	if _, err := s.CreateDataset(ctx, store.DatasetVersion{Name: "train", Digest: "xyz"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a digest that is not a sha256 is refused, got %v", err)
	}
}

// Two registry processes writing the same run: each one's cached document goes stale when
// the other writes, and no update is lost.
func TestTwoProcessesWritingOneRun(t *testing.T) {
	a := open(t)
	ctx := testenv.Context(t)
	b, err := store.Open(ctx, testenv.NATS(t).JS, a.Prefix())
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.CreateRun(ctx, store.Run{ExperimentID: store.DefaultExperimentID})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		w := a
		if i%2 == 1 {
			w = b
		}
		if _, err := w.LogBatch(ctx, r.ID, []store.Metric{{Key: "loss", Value: float64(i), Step: int64(i)}},
			map[string]string{fmt.Sprintf("p%d", i): "x"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := b.GetRun(ctx, r.ID)
	if len(got.Params) != 10 || got.Metrics["loss"].Step != 9 {
		t.Fatalf("updates lost between two writers: %+v", got)
	}
	if _, err := b.SetRunLifecycle(ctx, r.ID, store.StageDeleted); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LogBatch(ctx, r.ID, nil, map[string]string{"late": "x"}, nil); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a stale cache must not let a write through to a run deleted elsewhere, got %v", err)
	}
}
