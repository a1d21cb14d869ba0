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
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/monitor"
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

	vars, addr := platformVars(t, ch.Database, prefix, streamsDir, viewsDir, modelsDir, "L")
	servingVars(t, vars, model, viewsDir, prefix+"f:", addr["REGISTRY"], filepath.Join(dir, "serving-cache"))
	hook := monitorVars(t, vars, modelsDir, viewsDir, addr["REGISTRY"])
	for k, v := range map[string]string{"WINDOW": "10s", "GRACE": "3s", "MIN_WINDOW": "250", "TICK": "1s", "LOOKBACK": "30m",
		"PERSIST_K": "2", "PERSIST_N": "3", "COOLDOWN": "10m", "MIN_LABELS": "150", "PERF_RECHECK": "5m", "SKEW_SAMPLE": "100"} {
		vars["FLYWHEEL_MONITOR_"+k] = v
	}
	done := runServicesWhere(t, vars, func(_ int, name string) bool { return name != "monitor" })
	for _, svc := range []string{"INGEST", "FEATURES", "REGISTRY", "TRAINER"} {
		testenv.WaitReady(t, "http://"+addr[svc], done)
	}
	mon := startMonitor(t, vars)
	testenv.WaitReady(t, "http://"+addr["MONITOR"], mon.done)
	// A monitor stopped in the middle of the drifted windows and started again must neither
	// lose them nor decide an event or send an alert twice.
	restarted := make(chan struct{})
	afterDrift := func() {
		go func() {
			defer close(restarted)
			time.Sleep(14 * time.Second)
			mon.stop(t)
			time.Sleep(3 * time.Second)
			mon = startMonitor(t, vars)
		}()
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
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rep, err := scenario.Run(ctx, scenario.Config{Services: services, Kafka: kcfg, ClickHouse: chConn,
		Model: model, Stream: stream, Labels: labels, View: view, Run: testenv.Unique(t, "r"), Seed: 3,
		Cards: 1500, History: 12000, HistoryWindow: 14 * 24 * time.Hour, Rate: 60, Baseline: 30 * time.Second,
		LabelDelay: 2 * time.Second, LoopTimeout: 150 * time.Second, Compare: 15 * time.Second,
		ReadyTimeout: 60 * time.Second, TrainTimeout: 3 * time.Minute, Out: testWriter{t}, AfterDrift: afterDrift})
	if err != nil {
		t.Fatal(err)
	}
	<-restarted
	seen := map[string]int{}
	for _, e := range rep.Events {
		seen[e.Kind+"@"+e.WindowEnd.String()]++
		if seen[e.Kind+"@"+e.WindowEnd.String()] > 1 {
			t.Fatalf("two %s events for the window ending %v across the monitor's restart: %+v", e.Kind, e.WindowEnd, rep.Events)
		}
	}
	// Labels joined to their predictions give quality per window, and the new fraud pattern
	// shows as concept drift of the old champion.
	var perf, concept uint64
	waitUntil(t, "model_performance rows and concept drift of version 1 after the drift", func() bool {
		_ = chConn.QueryRow(ctx, "SELECT count() FROM model_performance WHERE model = ? AND metric = 'auc'", model).Scan(&perf)
		_ = chConn.QueryRow(ctx, `SELECT count() FROM drift_metrics FINAL WHERE model = ? AND version = 1 AND kind = 'concept'
			AND method = 'hanley_mcneil' AND drifted = 1 AND window_start >= toDateTime(?)`, model, uint32(rep.DriftAt.Unix())).Scan(&concept)
		return perf > 0 && concept > 0
	})
	waitUntil(t, "every drift event alerted exactly once", func() bool {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		for _, e := range rep.Events {
			if hook.ids[e.ID] != 1 {
				return false
			}
		}
		return true
	})
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

// monitorProc is a monitor of its own, to stop and start again.
type monitorProc struct {
	cancel context.CancelFunc
	done   chan error
}

func startMonitor(t *testing.T, vars map[string]string) *monitorProc {
	t.Helper()
	var cfg monitor.Config
	if err := config.Load(&cfg, nil, func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &monitorProc{cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- monitor.Run(ctx, cfg) }()
	t.Cleanup(func() { m.stop(t) })
	return m
}

// stop cancels the monitor wherever it is and waits for it.
func (m *monitorProc) stop(t *testing.T) {
	m.cancel()
	select {
	case <-m.done:
		m.done <- nil // a second stop returns at once
	case <-time.After(30 * time.Second):
		t.Error("monitor not stopped after 30 s")
	}
}
