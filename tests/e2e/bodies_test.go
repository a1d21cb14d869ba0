package e2e_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/testenv"
)

// A 12 MB body — larger than every service's limit — gets a readable JSON answer from every
// service, even from a client that sends the whole body before reading (the report: the
// connection was reset and the documented 413 never seen).
func TestEveryServiceAnswersAnOversizedBodyReadably(t *testing.T) {
	testenv.Kafka(t)
	ch := testenv.ClickHouseConfig(t)
	_, prefix := testenv.Redis(t)
	addrs := map[string]string{}
	vars := map[string]string{"FLYWHEEL_CLICKHOUSE_DATABASE": ch.Database, "FLYWHEEL_LOG_LEVEL": "error",
		"FLYWHEEL_REGISTRY_PREFIX": testenv.Unique(t, "R") + "_", "FLYWHEEL_INGEST_REDIS_PREFIX": prefix + "i:",
		"FLYWHEEL_FEATURES_REDIS_PREFIX": prefix + "f:", "FLYWHEEL_FEATURES_CONSUME": "false", "FLYWHEEL_INGEST_CONSUME_RAW": "false",
		"FLYWHEEL_INGEST_WRITE_EVENT_LOG": "false"}
	for _, s := range []string{"INGEST", "FEATURES", "REGISTRY", "SERVING", "MONITOR", "TRAINER"} {
		addrs[s] = freePort(t)
		vars["FLYWHEEL_"+s+"_ADDR"] = addrs[s]
	}
	vars["FLYWHEEL_TRAINER_REGISTRY_URL"] = "http://" + addrs["REGISTRY"]
	done := runServices(t, vars, 6)
	for _, s := range []string{"INGEST", "FEATURES", "REGISTRY", "SERVING", "MONITOR", "TRAINER"} {
		testenv.WaitReady(t, "http://"+addrs[s], done)
	}
	big := bytes.Repeat([]byte(" "), 12<<20)
	for _, c := range []struct{ svc, path, want string }{
		{"INGEST", "/v1/streams/transactions/events", "413"},
		{"FEATURES", "/v1/features/online", "413"},
		{"REGISTRY", "/api/2.0/mlflow/runs/log-batch", "413"},
		{"SERVING", "/v2/models/fraud/infer", "413"},
		{"SERVING", "/v1/models/fraud:predict", "413"},
		{"MONITOR", "/v1/anything", "404"},
		{"TRAINER", "/v1/train", "413"},
	} {
		conn, err := net.DialTimeout("tcp", addrs[c.svc], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", c.path, len(big))
		if _, err := conn.Write(big); err != nil {
			t.Errorf("%s %s: the connection broke while sending (%v)", c.svc, c.path, err)
			conn.Close()
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("%s %s: no readable answer: %v", c.svc, c.path, err)
			conn.Close()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		if !strings.HasPrefix(resp.Status, c.want) || !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
			t.Errorf("%s %s: %s %s; want %s with a JSON body", c.svc, c.path, resp.Status, b, c.want)
		}
	}
}
