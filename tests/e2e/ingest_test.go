package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
)

// TestIngestFromKcat is the ingest acceptance check: 10,000 valid and 100 invalid
// transactions produced by kcat (as a user would) become exactly 10,000 rows in the event log
// and 100 DLQ records naming the broken field; producing the same 10,000 again adds no rows
// and no events.<stream> records.
func TestIngestFromKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed: `make test` (deploy/local/stack up) installs it")
	}
	kcfg := testenv.Kafka(t)
	ch := testenv.ClickHouseConfig(t)
	stream, _, dir, _ := privateCatalog(t, t.TempDir())

	vars := map[string]string{"FLYWHEEL_CLICKHOUSE_DATABASE": ch.Database, "FLYWHEEL_LOG_LEVEL": "warn",
		"FLYWHEEL_INGEST_STREAMS_DIR": dir, "FLYWHEEL_INGEST_GROUP": testenv.Unique(t, "g"),
		"FLYWHEEL_INGEST_REDIS_PREFIX": testenv.Unique(t, "t") + ":", "FLYWHEEL_INGEST_STATS_INTERVAL": "200ms"}
	for _, s := range []string{"INGEST", "FEATURES", "REGISTRY", "SERVING", "MONITOR", "TRAINER"} {
		vars["FLYWHEEL_"+s+"_ADDR"] = freePort(t)
	}
	runServices(t, vars, 1) // ingest alone is enough here

	var valid, invalid bytes.Buffer
	for i := range 10000 {
		fmt.Fprintf(&valid, `{"transaction_id":"k-%d","card_id":"c-%d","amount":%d.5,"currency":"EUR","merchant_id":"m-%d","merchant_category":"grocery","country":"DE","channel":"pos","event_time":"2026-11-21T10:00:00Z"}`+"\n", i, i%100, i%90, i%37)
	}
	for i := range 100 {
		field := map[bool]string{true: `"amount":-1,"channel":"pos"`, false: `"amount":1,"channel":"fax"`}[i%2 == 0]
		fmt.Fprintf(&invalid, `{"transaction_id":"bad-%d","card_id":"c-1",%s,"currency":"EUR","merchant_id":"m","merchant_category":"g","country":"DE","event_time":"2026-11-21T10:00:00Z"}`+"\n", i, field)
	}
	produce := func(data []byte) {
		cmd := exec.Command(kcat, "-b", kcfg.Brokers[0], "-P", "-t", schemas.RawTopic(stream))
		cmd.Stdin = bytes.NewReader(data)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat: %v: %s", err, out)
		}
	}
	produce(append(valid.Bytes(), invalid.Bytes()...))

	conn, err := chx.Open(testenv.Context(t), ch)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows := func() (n uint64) {
		_ = conn.QueryRow(context.Background(), "SELECT count() FROM events FINAL WHERE stream = ?", stream).Scan(&n)
		return n
	}
	waitUntil(t, "10,000 rows in the event log", func() bool { return rows() == 10000 })
	dlq := consumeAll(t, kcat, kcfg, schemas.DLQTopic(stream), 100)
	if len(dlq) != 100 {
		t.Fatalf("want 100 DLQ records, got %d", len(dlq))
	}
	for _, rec := range dlq {
		if !strings.Contains(rec, `"reasons":["/amount: must be >= 0`) && !strings.Contains(rec, `"reasons":["/channel: must be one of`) {
			t.Fatalf("DLQ reason does not name the broken field: %s", rec)
		}
	}
	if n := len(consumeAll(t, kcat, kcfg, schemas.EventsTopic(stream), 10000)); n != 10000 {
		t.Fatalf("want 10,000 events records, got %d", n)
	}

	produce(valid.Bytes())
	waitUntil(t, "the replay counted as duplicates", func() bool {
		var n uint64
		_ = conn.QueryRow(context.Background(), "SELECT sum(events) FROM ingest_stats WHERE stream = ? AND outcome = 'duplicate'", stream).Scan(&n)
		return n == 10000
	})
	if n := rows(); n != 10000 {
		t.Fatalf("the replay changed the event log: %d rows", n)
	}
	if n := len(consumeAll(t, kcat, kcfg, schemas.EventsTopic(stream), 10000)); n != 10000 {
		t.Fatalf("the replay added events records: %d", n)
	}
}

// consumeAll reads a topic from the beginning with kcat until it is idle.
func consumeAll(t *testing.T, kcat string, kcfg kafkax.Config, topic string, want int) []string {
	t.Helper()
	var lines []string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out, err := exec.Command(kcat, "-b", kcfg.Brokers[0], "-C", "-t", topic, "-o", "beginning", "-e", "-q").Output()
		if err != nil {
			t.Fatalf("kcat consume %s: %v", topic, err)
		}
		lines = strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(out) == 0 {
			lines = nil
		}
		if len(lines) >= want {
			return lines
		}
		time.Sleep(200 * time.Millisecond)
	}
	return lines
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
