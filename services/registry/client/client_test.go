package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/services/registry"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

func startRegistry(t *testing.T) string {
	t.Helper()
	testenv.Kafka(t)
	prefix := testenv.Unique(t, "R") + "_"
	ch := testenv.ClickHouseConfig(t)
	addr := testenv.FreeAddr(t)
	vars := map[string]string{"FLYWHEEL_REGISTRY_ADDR": addr, "FLYWHEEL_REGISTRY_PREFIX": prefix,
		"FLYWHEEL_CLICKHOUSE_DATABASE": ch.Database, "FLYWHEEL_LOG_LEVEL": "warn"}
	var cfg registry.Config
	if err := config.Load(&cfg, nil, func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- registry.Run(ctx, cfg) }()
	conn := testenv.NATS(t)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("registry stopped with %v", err)
		}
		buckets, streams := store.Names(prefix)
		for _, b := range buckets {
			_ = conn.JS.DeleteKeyValue(context.Background(), b)
		}
		for _, s := range streams {
			_ = conn.JS.DeleteStream(context.Background(), s)
		}
		_ = conn.JS.DeleteObjectStore(context.Background(), prefix+"ARTIFACTS")
	})
	testenv.WaitReady(t, "http://"+addr, done)
	return "http://" + addr
}

// The trainer's sequence against a real registry: experiment, run, metrics, artifact,
// dataset version, model version with lineage and profile, champion move.
func TestTrainerSequence(t *testing.T) {
	c := client.New(startRegistry(t), "", "trainer", nil)
	ctx := testenv.Context(t)
	exp, err := c.EnsureExperiment(ctx, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := c.EnsureExperiment(ctx, "fraud"); err != nil || again != exp {
		t.Fatalf("EnsureExperiment is idempotent: %s vs %s (%v)", again, exp, err)
	}
	run, err := c.CreateRun(ctx, exp, "retrain", map[string]string{"flywheel.trigger": "manual"})
	if err != nil || run.ID == "" || run.ArtifactURI == "" {
		t.Fatalf("run %+v %v", run, err)
	}
	metrics := make([]client.Metric, 1500) // more than one batch
	for i := range metrics {
		metrics[i] = client.Metric{Key: "train_loss", Value: 1 / float64(i+1), Timestamp: time.Now().UnixMilli(), Step: int64(i)}
	}
	if err := c.LogBatch(ctx, run.ID, metrics, map[string]string{"num_trees": "200"}, nil); err != nil {
		t.Fatal(err)
	}
	blob := []byte("model bytes")
	if err := c.PutArtifact(ctx, run.ArtifactURI, "model/model.flywheel", blob); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetArtifact(ctx, run.ArtifactURI, "model/model.flywheel"); err != nil || string(got) != string(blob) {
		t.Fatalf("artifact round trip: %q %v", got, err)
	}
	ds, err := c.RecordDataset(ctx, client.DatasetVersion{Name: "fraud", Digest: "ab12" + "00000000000000000000000000000000000000000000000000000000000000"[:60],
		SourceStreams: []string{"transactions", "fraud_labels"}, Start: time.Now().Add(-time.Hour), End: time.Now(), RowCount: 10,
		FeatureViews: map[string]string{"card_activity": "v1"}})
	if err != nil || ds.ID == "" {
		t.Fatalf("dataset %+v %v", ds, err)
	}
	if err := c.EnsureModel(ctx, "fraud"); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureModel(ctx, "fraud"); err != nil {
		t.Fatalf("EnsureModel is idempotent: %v", err)
	}
	if al, err := c.Aliases(ctx, "fraud"); err != nil || len(al) != 0 {
		t.Fatalf("no aliases yet: %v %v", al, err)
	}
	v, err := c.CreateVersion(ctx, "fraud", client.NewVersion{Source: run.ArtifactURI + "/model", RunID: run.ID,
		Lineage:   &client.Lineage{DatasetVersion: ds.ID, FeatureViews: map[string]string{"card_activity": "v1"}, Trigger: "manual"},
		Signature: []client.Field{{Name: "amount", Type: "double"}}, Profile: json.RawMessage(`{"rows":10}`)})
	if err != nil || v.Version != 1 {
		t.Fatalf("version %+v %v", v, err)
	}
	if err := c.MoveAlias(ctx, "fraud", "champion", v.Version, "first model"); err != nil {
		t.Fatal(err)
	}
	al, err := c.Aliases(ctx, "fraud")
	if err != nil || al["champion"] != 1 {
		t.Fatalf("aliases %v %v", al, err)
	}
	got, err := c.GetVersion(ctx, "fraud", 1)
	if err != nil || got.Lineage == nil || got.Lineage.DatasetVersion != ds.ID || string(got.Profile) != `{"rows":10}` || len(got.Aliases) != 1 {
		t.Fatalf("version read back %+v %v", got, err)
	}
	if _, err := c.GetVersion(ctx, "fraud", 9); !client.IsNotFound(err) {
		t.Fatalf("missing version: %v", err)
	}
	if err := c.EndRun(ctx, run.ID, "FINISHED"); err != nil {
		t.Fatal(err)
	}
}

// SearchRuns against a real registry: MLflow filters on tags and start time, newest first,
// only the experiments asked for, at most max, across pages, and the registry's refusal of a
// bad filter as a *client.Error.
func TestSearchRuns(t *testing.T) {
	c := client.New(startRegistry(t), "", "trainer", nil)
	ctx := testenv.Context(t)
	exp, err := c.EnsureExperiment(ctx, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.EnsureExperiment(ctx, "churn")
	if err != nil {
		t.Fatal(err)
	}
	create := func(exp, trigger string) client.RunInfo {
		time.Sleep(3 * time.Millisecond) // distinct start times
		r, err := c.CreateRun(ctx, exp, "retrain", map[string]string{"flywheel.trigger": trigger, "flywheel.coalesced": `["d,9"]`})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := create(exp, "drift:d-1")
	create(exp, "manual")
	create(other, "drift:d-2")
	second := create(exp, "drift:d-3")
	if err := c.EndRun(ctx, second.ID, "FAILED"); err != nil {
		t.Fatal(err)
	}
	const drift = "tags.`flywheel.trigger` LIKE 'drift:%'"
	ids := func(rs []client.Run) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Info.ID)
		}
		return out
	}
	got, err := c.SearchRuns(ctx, []string{exp}, drift, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), []string{second.ID, first.ID}) {
		t.Fatalf("drift runs of fraud, newest first: %v, want %v", ids(got), []string{second.ID, first.ID})
	}
	if r := got[0]; r.Tag("flywheel.trigger") != "drift:d-3" || r.Tag("flywheel.coalesced") != `["d,9"]` || r.Tag("absent") != "" ||
		r.Info.Status != "FAILED" || r.Info.EndTime == 0 || r.Info.ExperimentID != exp || r.Info.StartTime < got[1].Info.StartTime {
		t.Fatalf("a run's info and tags: %+v", r)
	}
	since, err := c.SearchRuns(ctx, []string{exp}, fmt.Sprintf("%s AND attributes.start_time >= %d", drift, got[0].Info.StartTime), 10)
	if err != nil || !slices.Equal(ids(since), []string{second.ID}) {
		t.Fatalf("filtered by start time: %v %v", ids(since), err)
	}
	if one, err := c.SearchRuns(ctx, []string{exp, other}, drift, 1); err != nil || !slices.Equal(ids(one), []string{second.ID}) {
		t.Fatalf("at most max: %v %v", ids(one), err)
	}
	defer client.SetSearchPage(1)()
	paged, err := c.SearchRuns(ctx, []string{exp, other}, drift, 10)
	if err != nil || len(paged) != 3 || paged[0].Info.ID != second.ID || paged[2].Info.ID != first.ID {
		t.Fatalf("three drift runs of both experiments a page at a time: %v %v", ids(paged), err)
	}
	if _, err := c.SearchRuns(ctx, []string{exp}, "tags.x LIKE", 10); err == nil {
		t.Fatal("a bad filter is an error")
	} else if e := (*client.Error)(nil); !errors.As(err, &e) || e.Status != 400 || e.Code != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("a bad filter is the registry's 400: %v", err)
	}
}
