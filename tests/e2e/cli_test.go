package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/cli"
	"github.com/flywheel-ml/flywheel/platform/testenv"
)

// TestCLIOnTheRealStack runs the six services in this process, as `flywheel up` does, on the
// real stack, and drives them with the flywheel CLI: status waits until every service is
// ready and every server reachable (exit 0), streams list shows the test's stream, streams
// produce sends NDJSON over HTTP (naming the rejected line) and over Kafka (raw.<stream>),
// and features get / historical read the values those events produced, online and point in
// time.
func TestCLIOnTheRealStack(t *testing.T) {
	testenv.Kafka(t)
	ch := testenv.ClickHouseConfig(t)
	_, prefix := testenv.Redis(t)
	dir := t.TempDir()
	stream, view, streamsDir, viewsDir := privateCatalog(t, dir)
	vars := map[string]string{"FLYWHEEL_CLICKHOUSE_DATABASE": ch.Database, "FLYWHEEL_LOG_LEVEL": "error",
		"FLYWHEEL_REGISTRY_PREFIX": testenv.Unique(t, "R") + "_", "FLYWHEEL_INGEST_REDIS_PREFIX": prefix + "i:",
		"FLYWHEEL_FEATURES_REDIS_PREFIX": prefix + "f:", "FLYWHEEL_INGEST_STREAMS_DIR": streamsDir, "FLYWHEEL_FEATURES_VIEWS_DIR": viewsDir,
		"FLYWHEEL_INGEST_GROUP": testenv.Unique(t, "g"), "FLYWHEEL_FEATURES_GROUP": testenv.Unique(t, "g"),
		"FLYWHEEL_STATE_DIR": filepath.Join(dir, "state")}
	for _, s := range []string{"INGEST", "FEATURES", "REGISTRY", "SERVING", "MONITOR", "TRAINER"} {
		vars["FLYWHEEL_"+s+"_ADDR"] = freePort(t)
	}
	vars["FLYWHEEL_TRAINER_REGISTRY_URL"] = "http://" + vars["FLYWHEEL_REGISTRY_ADDR"]
	lookup := func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	flywheel := func(stdin string, args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		root := cli.New(&stdout, &stderr, lookup)
		root.SetIn(strings.NewReader(stdin))
		root.SetArgs(args)
		err := root.ExecuteContext(context.Background())
		return stdout.String(), err
	}
	done := runServices(t, vars, 6)

	// status: the CLI finds the services at the addresses they listen on (FLYWHEEL_*_ADDR).
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := flywheel("", "status", "-o", "json")
		if err == nil {
			var st struct {
				Ready          bool
				Infrastructure []struct{ Name, State, Version string }
			}
			if err := json.Unmarshal([]byte(out), &st); err != nil || !st.Ready || len(st.Infrastructure) != 4 {
				t.Fatalf("status exited 0 but says: %v\n%s", err, out)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("services stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("flywheel status did not report ready in 60 s: %v\n%s", err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}

	out, err := flywheel("", "streams", "list")
	if err != nil || !strings.Contains(out, stream) || !strings.Contains(out, "raw."+stream) {
		t.Fatalf("streams list lacks %s: %v\n%s", stream, err, out)
	}

	card := testenv.Unique(t, "card")
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	event := func(id string, amount float64, ts time.Time) string {
		return fmt.Sprintf(`{"transaction_id":%q,"card_id":%q,"amount":%g,"currency":"EUR","merchant_id":"m-1","merchant_category":"grocery","country":"DE","channel":"pos","event_time":%q}`,
			id, card, amount, ts.Format(time.RFC3339))
	}
	ndjson := strings.Join([]string{event("t-1", 10, at), event("t-2", -5, at), event("t-3", 30, at.Add(time.Minute))}, "\n") + "\n"
	out, err = flywheel(ndjson, "streams", "produce", stream)
	if err == nil || !strings.Contains(err.Error(), "1 of 3 events were rejected") || !strings.Contains(out, "2 accepted") ||
		!strings.Contains(out, "/amount") {
		t.Fatalf("produce over HTTP: %v\n%s", err, out)
	}
	out, err = flywheel(event("t-4", 60, at.Add(2*time.Minute))+"\n", "streams", "produce", stream, "--via", "kafka", "-o", "json")
	if err != nil || !strings.Contains(out, `"sent": 1`) || !strings.Contains(out, "raw."+stream) {
		t.Fatalf("produce over Kafka: %v\n%s", err, out)
	}

	// features get: the three valid events, online.
	waitUntil(t, "the three events in the online store", func() bool {
		out, err := flywheel("", "features", "get", view, "card_id="+card, "--features", "txn_count_24h,amount_sum_24h", "-o", "json")
		if err != nil {
			return false
		}
		var got struct {
			Rows []struct{ Values []any }
		}
		return json.Unmarshal([]byte(out), &got) == nil && len(got.Rows) == 1 && len(got.Rows[0].Values) == 2 &&
			got.Rows[0].Values[0] == float64(3) && got.Rows[0].Values[1] == float64(100)
	})
	out, err = flywheel("", "features", "get", view, "card_id="+card)
	if err != nil || !strings.Contains(out, view+":txn_count_24h") || !strings.Contains(out, "PRESENT") {
		t.Fatalf("features get: %v\n%s", err, out)
	}

	// features historical: as of just after the first event, only it counts.
	row := fmt.Sprintf(`{"card_id":%q,"event_timestamp":%q}`, card, at.Add(30*time.Second).Format(time.RFC3339))
	waitUntil(t, "the offline store to answer as of the first event", func() bool {
		out, err = flywheel("", "features", "historical", "--features", view+":txn_count_24h", "--row", row, "-o", "json")
		var rows []map[string]any
		return err == nil && json.Unmarshal([]byte(out), &rows) == nil && len(rows) == 1 && rows[0][view+":txn_count_24h"] == float64(1)
	})
	out, err = flywheel(row+"\n", "features", "historical", "--view", view, "-f", "-")
	if err != nil || !strings.Contains(out, "TXN_COUNT_24H") || !strings.Contains(out, card) {
		t.Fatalf("features historical table: %v\n%s", err, out)
	}

	// The registry answers through the same client: no models yet.
	out, err = flywheel("", "models", "list", "-o", "json")
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("models list: %v\n%s", err, out)
	}
}
