package client_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
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
