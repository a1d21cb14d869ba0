package e2e_test

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/demo/scenario"
	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

// TestTheLoopClosesByItself is `make demo` in short, on the test stack with names of its
// own: history and a first model through the gates, live payments scored by serving, then
// data drift and a new fraud pattern — and with no step taken by the test, the monitor's
// drift event triggers a retrain on fresh labels, the gates promote the new version, serving
// switches to it with zero failed requests, and on the same drifted payments the new
// champion's AUC beats the old one's. scenario.Run fails naming any step that did not happen.
func TestTheLoopClosesByItself(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole loop takes about two minutes; it runs without -short (make test)")
	}
	kcfg := testenv.Kafka(t)
	ch := testenv.ClickHouseConfig(t)
	_, prefix := testenv.Redis(t)
	dir := t.TempDir()
	stream, view, streamsDir, viewsDir := privateCatalog(t, dir)
	labels := testenv.Unique(t, "lb")
	raw, _ := fs.ReadFile(schemas.Streams(), "fraud_labels.json")
	if err := os.WriteFile(filepath.Join(streamsDir, labels+".json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Topics(t, kcfg, schemas.RawTopic(labels), schemas.EventsTopic(labels), schemas.DLQTopic(labels), schemas.TopicDrift)
	model := strings.ReplaceAll(testenv.Unique(t, "loop"), "-", "_")
	model = model[:min(len(model), 60)]
	spec, err := scenario.Spec(model, stream, labels, view)
	if err != nil {
		t.Fatal(err)
	}
	spec = []byte(strings.Replace(string(spec), "fresh_rows: 4000", "fresh_rows: 2000", 1))
	modelsDir := filepath.Join(dir, "models")
	_ = os.MkdirAll(modelsDir, 0o755)
	if err := os.WriteFile(filepath.Join(modelsDir, model+".yaml"), spec, 0o644); err != nil {
		t.Fatal(err)
	}

	regPrefix := testenv.Unique(t, "L") + "_"
	addr := map[string]string{}
	vars := map[string]string{"FLYWHEEL_CLICKHOUSE_DATABASE": ch.Database, "FLYWHEEL_LOG_LEVEL": "warn",
		"FLYWHEEL_INGEST_STREAMS_DIR": streamsDir, "FLYWHEEL_INGEST_GROUP": testenv.Unique(t, "g"),
		"FLYWHEEL_INGEST_REDIS_PREFIX": prefix + "ingest:", "FLYWHEEL_FEATURES_VIEWS_DIR": viewsDir,
		"FLYWHEEL_FEATURES_GROUP": testenv.Unique(t, "g"), "FLYWHEEL_FEATURES_REDIS_PREFIX": prefix + "f:",
		"FLYWHEEL_REGISTRY_PREFIX": regPrefix, "FLYWHEEL_TRAINER_MODELS_DIR": modelsDir, "FLYWHEEL_TRAINER_VIEWS_DIR": viewsDir,
		"FLYWHEEL_TRAINER_GROUP": testenv.Unique(t, "g")}
	for _, svc := range []string{"INGEST", "FEATURES", "REGISTRY", "SERVING", "MONITOR", "TRAINER"} {
		addr[svc] = freePort(t)
		vars["FLYWHEEL_"+svc+"_ADDR"] = addr[svc]
	}
	vars["FLYWHEEL_TRAINER_REGISTRY_URL"] = "http://" + addr["REGISTRY"]
	servingVars(t, vars, model, viewsDir, prefix+"f:", addr["REGISTRY"], filepath.Join(dir, "serving-cache"))
	hook := monitorVars(t, vars, modelsDir, viewsDir, addr["REGISTRY"])
	_ = hook
	for k, v := range map[string]string{"WINDOW": "10s", "GRACE": "3s", "MIN_WINDOW": "250", "TICK": "1s", "LOOKBACK": "30m",
		"PERSIST_K": "2", "PERSIST_N": "3", "COOLDOWN": "10m", "MIN_LABELS": "150", "PERF_RECHECK": "5m", "SKEW_SAMPLE": "100"} {
		vars["FLYWHEEL_MONITOR_"+k] = v
	}
	conn := testenv.NATS(t)
	t.Cleanup(func() {
		buckets, streams := store.Names(regPrefix)
		for _, b := range buckets {
			_ = conn.JS.DeleteKeyValue(context.Background(), b)
		}
		for _, s := range streams {
			_ = conn.JS.DeleteStream(context.Background(), s)
		}
		_ = conn.JS.DeleteObjectStore(context.Background(), regPrefix+"ARTIFACTS")
	})
	done := runServices(t, vars, 6)
	for _, svc := range []string{"INGEST", "FEATURES", "REGISTRY", "TRAINER", "MONITOR"} {
		testenv.WaitReady(t, "http://"+addr[svc], done)
	}
	chConn, err := chx.Open(testenv.Context(t), ch)
	if err != nil {
		t.Fatal(err)
	}
	defer chConn.Close()
	services := map[string]string{}
	for _, svc := range []string{"INGEST", "FEATURES", "REGISTRY", "SERVING", "MONITOR", "TRAINER"} {
		services[strings.ToLower(svc)] = "http://" + addr[svc]
	}
	rep, err := scenario.Run(testenv.Context(t), scenario.Config{Services: services, Kafka: kcfg, ClickHouse: chConn,
		Model: model, Stream: stream, Labels: labels, Run: testenv.Unique(t, "r"), Seed: 3,
		Cards: 1500, History: 12000, HistoryWindow: 14 * 24 * time.Hour, Rate: 60, Baseline: 30 * time.Second,
		LabelDelay: 2 * time.Second, LoopTimeout: 150 * time.Second, Compare: 15 * time.Second,
		ReadyTimeout: 60 * time.Second, TrainTimeout: 3 * time.Minute, Out: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Event.ID == "" || rep.Promotion.Version != rep.NewVersion || rep.Failed != 0 || !(rep.DriftedNew > rep.DriftedOld) {
		t.Fatalf("report: %+v", rep)
	}
}

// testWriter sends the scenario's output to the test log, line by line.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.t.Log(line)
		}
	}
	return len(p), nil
}

var _ io.Writer = testWriter{}
