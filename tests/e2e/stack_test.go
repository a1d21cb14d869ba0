package e2e_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/up"
	"github.com/flywheel-ml/flywheel/platform/testenv"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
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
