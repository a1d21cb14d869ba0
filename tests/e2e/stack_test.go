package e2e_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/up"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

func freePort(t *testing.T) string { return testenv.FreeAddr(t) }

// runServices runs the first n services of `flywheel up` (ingest, features, ...) in this
// process with vars over the environment, and stops them when the test ends.
func runServices(t *testing.T, vars map[string]string, n int) <-chan error {
	t.Helper()
	return runServicesWhere(t, vars, func(i int, _ string) bool { return i < n })
}

// runServicesWhere runs the services of `flywheel up` that keep accepts (by position and
// name) in this process with vars over the environment, and stops them when the test ends.
func runServicesWhere(t *testing.T, vars map[string]string, keep func(i int, name string) bool) <-chan error {
	t.Helper()
	services, err := up.Services(func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var kept []up.Service
	for i, s := range services {
		if keep(i, s.Name) {
			kept = append(kept, s)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- up.Run(ctx, kept) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("services stopped with %v", err)
		}
	})
	return done
}

// privateCatalog writes a copy of the transactions stream (and of card_activity, fed by it)
// under names of the test's own into dir, creates their topics, and returns the names and
// the stream and view directories.
func privateCatalog(t *testing.T, dir string) (stream, view, streamsDir, viewsDir string) {
	t.Helper()
	stream, view = testenv.Unique(t, "tx"), testenv.Unique(t, "ca")
	streamsDir, viewsDir = filepath.Join(dir, "streams"), filepath.Join(dir, "views")
	for _, d := range []string{streamsDir, viewsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := fs.ReadFile(schemas.Streams(), "transactions.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(streamsDir, stream+".json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err = fs.ReadFile(schemas.FeatureViews(), "card_activity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def := strings.Replace(strings.Replace(string(raw), "name: card_activity", "name: "+view, 1), "source: transactions", "source: "+stream, 1)
	if err := os.WriteFile(filepath.Join(viewsDir, "view.yaml"), []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Topics(t, testenv.Kafka(t), schemas.RawTopic(stream), schemas.EventsTopic(stream), schemas.DLQTopic(stream))
	return stream, view, streamsDir, viewsDir
}

// TestAllServicesStartServeAndStop runs the six services in one process, as `flywheel up`
// does, against the real stack: each answers /healthz and /readyz, serves valid Prometheus
// text, and all of them stop within 10 s of the shutdown signal.
func TestAllServicesStartServeAndStop(t *testing.T) {
	testenv.Kafka(t) // fail with instructions when the stack is down
	ch := testenv.ClickHouseConfig(t)
	addrs := map[string]string{}
	vars := map[string]string{"FLYWHEEL_CLICKHOUSE_DATABASE": ch.Database, "FLYWHEEL_LOG_LEVEL": "warn"}
	for _, s := range []string{"INGEST", "FEATURES", "REGISTRY", "SERVING", "MONITOR", "TRAINER"} {
		addrs[s] = freePort(t)
		vars["FLYWHEEL_"+s+"_ADDR"] = addrs[s]
	}
	vars["FLYWHEEL_TRAINER_REGISTRY_URL"] = "http://" + addrs["REGISTRY"]
	lookup := func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	services, err := up.Services(lookup, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- up.Run(ctx, services) }()
	t.Cleanup(cancel)

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(url string) (int, []byte, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	for name, addr := range addrs {
		deadline := time.Now().Add(45 * time.Second)
		for {
			code, body, err := get("http://" + addr + "/readyz")
			if err == nil && code == http.StatusOK {
				break
			}
			select {
			case err := <-done:
				t.Fatalf("services stopped early: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready at %s: %d %s %v", name, addr, code, body, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code, _, err := get("http://" + addr + "/healthz"); err != nil || code != 200 {
			t.Fatalf("%s /healthz: %d %v", name, code, err)
		}
		code, body, err := get("http://" + addr + "/metrics")
		if err != nil || code != 200 {
			t.Fatalf("%s /metrics: %d %v", name, code, err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s /metrics is not valid Prometheus text: %v", name, err)
		}
		if _, ok := families["go_goroutines"]; !ok {
			t.Fatalf("%s /metrics lacks runtime metrics", name)
		}
	}

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("services did not stop within 10 s")
	}
	t.Logf("all six services stopped in %v", time.Since(start))
	for name, addr := range addrs {
		if _, _, err := get("http://" + addr + "/healthz"); err == nil {
			t.Errorf("%s still answers after shutdown", name)
		}
	}
}

// platformVars configures the six services for a test of its own: private consumer groups,
// Redis prefixes, registry buckets (deleted at the end) and free ports; addr holds each
// service's address by its upper-case name.
func platformVars(t *testing.T, database, redisPrefix, streamsDir, viewsDir, modelsDir, registryTag string) (vars, addr map[string]string) {
	t.Helper()
	regPrefix := testenv.Unique(t, registryTag) + "_"
	addr = map[string]string{}
	vars = map[string]string{"FLYWHEEL_CLICKHOUSE_DATABASE": database, "FLYWHEEL_LOG_LEVEL": "warn",
		"FLYWHEEL_INGEST_STREAMS_DIR": streamsDir, "FLYWHEEL_INGEST_GROUP": testenv.Unique(t, "g"),
		"FLYWHEEL_INGEST_REDIS_PREFIX": redisPrefix + "ingest:", "FLYWHEEL_FEATURES_VIEWS_DIR": viewsDir,
		"FLYWHEEL_FEATURES_GROUP": testenv.Unique(t, "g"), "FLYWHEEL_FEATURES_REDIS_PREFIX": redisPrefix + "f:",
		"FLYWHEEL_REGISTRY_PREFIX": regPrefix, "FLYWHEEL_TRAINER_MODELS_DIR": modelsDir, "FLYWHEEL_TRAINER_VIEWS_DIR": viewsDir,
		"FLYWHEEL_TRAINER_GROUP": testenv.Unique(t, "g")}
	for _, svc := range []string{"INGEST", "FEATURES", "REGISTRY", "SERVING", "MONITOR", "TRAINER"} {
		addr[svc] = freePort(t)
		vars["FLYWHEEL_"+svc+"_ADDR"] = addr[svc]
	}
	vars["FLYWHEEL_TRAINER_REGISTRY_URL"] = "http://" + addr["REGISTRY"]
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
	return vars, addr
}
