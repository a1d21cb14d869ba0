package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
)

// TestFeaturesSurviveSIGKILL is the features acceptance check: events flow from raw.<stream>
// through ingest into features; the features process is killed with SIGKILL mid-stream and
// restarted; afterwards every card's window values are exactly what the events say — no
// double counting, no loss.
func TestFeaturesSurviveSIGKILL(t *testing.T) {
	kcfg := testenv.Kafka(t)
	ch := testenv.ClickHouseConfig(t)
	redisCfg := testenv.RedisConfig(t)
	dir := t.TempDir()
	stream, view, streamsDir, viewsDir := privateCatalog(t, dir)

	// ingest in-process
	vars := map[string]string{"FLYWHEEL_CLICKHOUSE_DATABASE": ch.Database, "FLYWHEEL_LOG_LEVEL": "warn",
		"FLYWHEEL_INGEST_STREAMS_DIR": streamsDir, "FLYWHEEL_INGEST_GROUP": testenv.Unique(t, "g"),
		"FLYWHEEL_INGEST_REDIS_PREFIX": testenv.Unique(t, "t") + ":", "FLYWHEEL_INGEST_ADDR": freePort(t),
		"FLYWHEEL_INGEST_WRITE_EVENT_LOG": "false"}
	runServices(t, vars, 1)

	// features as its own process, so it can be SIGKILLed
	bin := filepath.Join(dir, "features")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/flywheel-ml/flywheel/services/features/cmd/features").CombinedOutput(); err != nil {
		t.Fatalf("build features: %v\n%s", err, out)
	}
	addr := freePort(t)
	env := append(os.Environ(), "FLYWHEEL_FEATURES_ADDR="+addr, "FLYWHEEL_FEATURES_VIEWS_DIR="+viewsDir,
		"FLYWHEEL_FEATURES_GROUP="+testenv.Unique(t, "g"), "FLYWHEEL_FEATURES_REDIS_PREFIX="+testenv.Unique(t, "t")+":",
		"FLYWHEEL_CLICKHOUSE_DATABASE="+ch.Database, "FLYWHEEL_REDIS_ADDR="+redisCfg.Addr, "FLYWHEEL_LOG_LEVEL=warn",
		"FLYWHEEL_FEATURES_BATCH_SIZE=100")
	startFeatures := func() *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env = env
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	proc := startFeatures()
	t.Cleanup(func() { _ = proc.Process.Signal(syscall.SIGTERM); _ = proc.Wait() })

	now := time.Now().UTC().Truncate(time.Millisecond)
	const n, cards = 6000, 25
	type tx struct {
		card   string
		amount float64
		ts     time.Time
	}
	sent := make([]tx, n)
	msgs := make([]kafkax.Message, n)
	for i := range n {
		x := tx{card: fmt.Sprintf("c-%d", i%cards), amount: float64(i%97) + 0.25, ts: now.Add(-2 * time.Hour).Add(time.Duration(i) * 2 * time.Hour / n)}
		sent[i] = x
		msgs[i] = kafkax.Message{Topic: schemas.RawTopic(stream), Key: []byte(x.card), Value: fmt.Appendf(nil,
			`{"transaction_id":"k-%d","card_id":%q,"amount":%v,"currency":"EUR","merchant_id":"m-%d","merchant_category":"grocery","country":"DE","channel":"pos","event_time":%q}`,
			i, x.card, x.amount, i%13, x.ts.Format(time.RFC3339Nano))}
	}
	p := kafkax.NewProducer(kcfg)
	defer p.Close()

	metric := func() float64 {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, "flywheel_features_updates_total") {
				var v float64
				fmt.Sscanf(line[strings.LastIndex(line, " ")+1:], "%g", &v)
				return v
			}
		}
		return 0
	}
	waitUntil(t, "features ready", func() bool { return metric() >= 0 })
	if err := p.Produce(testenv.Context(t), msgs...); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "features applying events", func() bool { return metric() > 0 })
	appliedBeforeKill := metric()
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()
	if appliedBeforeKill >= n {
		t.Fatalf("the kill came after all %d events were applied; the test proves nothing", n)
	}
	t.Logf("features killed with SIGKILL after applying %v of %d events; restarting", appliedBeforeKill, n)
	proc = startFeatures()

	names := []string{view + ":txn_count_7d", view + ":txn_count_1h", view + ":amount_sum_24h"}
	cardIDs := make([]string, cards)
	for i := range cardIDs {
		cardIDs[i] = fmt.Sprintf("c-%d", i)
	}
	var got [][]any
	lookup := func() bool {
		body, _ := json.Marshal(map[string]any{"features": names, "entities": map[string]any{"card_id": cardIDs}, "at": now})
		resp, err := http.Post("http://"+addr+"/get-online-features", "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r struct {
			Results []struct{ Values []any } `json:"results"`
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Results) != 4 {
			return false
		}
		got = nil
		for _, c := range r.Results[1:] {
			got = append(got, c.Values)
		}
		total := 0.0
		for _, v := range got[0] {
			f, _ := v.(float64)
			total += f
		}
		return total >= n
	}
	waitUntil(t, "all events applied after the restart", lookup)
	time.Sleep(time.Second) // let any double application show
	lookup()
	for ci, card := range cardIDs {
		var count7d, count1h, sum24h float64
		for _, x := range sent {
			if x.card != card {
				continue
			}
			count7d++
			sum24h += x.amount
			if !x.ts.Before(now.Truncate(time.Minute).Add(-time.Hour + time.Minute)) {
				count1h++
			}
		}
		if got[0][ci] != count7d || got[1][ci] != count1h || math.Abs(got[2][ci].(float64)-sum24h) > 1e-6 {
			t.Errorf("%s: got count7d %v count1h %v sum24h %v, want %v %v %v", card, got[0][ci], got[1][ci], got[2][ci], count7d, count1h, sum24h)
		}
	}
}
