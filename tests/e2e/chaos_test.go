//go:build chaos

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/segmentio/kafka-go"

	"github.com/flywheel-ml/flywheel/schemas"
)

// TestChaos is the fault-injection acceptance run of issue #13 (`make chaos`, never part of
// `make test`): on a stack of its own, with the six services as separate processes and a
// steady load of clients that retry every batch until it is acknowledged, it SIGKILLs each
// service in turn (restarting it as a supervisor would) and restarts the broker, Redis, NATS
// and ClickHouse under the services' feet. Afterwards every acknowledged event is in the
// event log exactly once, the online values of every card equal an independent computation
// from the event log, every acknowledged registry write is present with its event, and every
// service is ready — with no manual step.
func TestChaos(t *testing.T) {
	stackDir := chaosEnv(t, "FLYWHEEL_STACK_DIR")
	ch := newChaos(t, stackDir)
	ch.startServices()
	ch.waitAllReady(2 * time.Minute)

	loadCtx, stopLoad := context.WithCancel(context.Background())
	var loadWG sync.WaitGroup
	for w := range chaosWorkers {
		loadWG.Go(func() { ch.postTransactions(loadCtx, w) })
	}
	loadWG.Go(func() { ch.createModels(loadCtx) })

	pause := func(d time.Duration) { time.Sleep(d) }
	pause(5 * time.Second)
	for _, svc := range chaosServices {
		ch.killAndRestart(svc)
		pause(4 * time.Second)
	}
	for _, comp := range []string{"kafka", "redis", "nats", "clickhouse"} {
		ch.restartComponent(comp, 5*time.Second)
		pause(8 * time.Second)
	}
	pause(5 * time.Second)
	stopLoad()
	loadWG.Wait()
	ch.failIfLoadFailed()
	t.Logf("load: %d events and %d registry models acknowledged, %d retried requests",
		ch.ackedEvents(), len(ch.models), ch.retries.Load())

	ch.waitAllReady(3 * time.Minute)
	ch.verifyEventLog(3 * time.Minute)
	ch.verifyOnlineFeatures(3 * time.Minute)
	ch.verifyRegistry(2 * time.Minute)
}

const (
	chaosWorkers   = 4
	chaosBatch     = 100
	chaosCards     = 40
	chaosStreamKey = "transactions"
	chaosPace      = 100 * time.Millisecond // per worker between batches: at most 4,000 events/s
)

var chaosServices = []string{"ingest", "features", "registry", "serving", "monitor", "trainer"}

func chaosEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the chaos suite with `make chaos`, which starts its own stack", name)
	}
	return v
}

type chaosRun struct {
	t        *testing.T
	stackDir string
	repo     string
	binDir   string
	logDir   string

	mu    sync.Mutex
	procs map[string]*exec.Cmd
	addrs map[string]string

	ackMu   sync.Mutex
	acked   map[string]chaosTx // event id → what was acknowledged
	models  []string
	loadErr error
	retries atomicCounter
}

type chaosTx struct {
	card   string
	amount float64
}

type atomicCounter struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCounter) Add(d int) { c.mu.Lock(); c.n += d; c.mu.Unlock() }
func (c *atomicCounter) Load() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

func newChaos(t *testing.T, stackDir string) *chaosRun {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ch := &chaosRun{t: t, stackDir: stackDir, repo: repo, binDir: filepath.Join(dir, "bin"),
		logDir: filepath.Join(stackDir, "chaos-logs"), procs: map[string]*exec.Cmd{}, addrs: map[string]string{},
		acked: map[string]chaosTx{}}
	if err := os.MkdirAll(ch.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"build", "-o", ch.binDir + "/"}
	for _, s := range chaosServices {
		args = append(args, "github.com/flywheel-ml/flywheel/services/"+s+"/cmd/"+s)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("build services: %v\n%s", err, out)
	}
	for i, s := range chaosServices {
		ch.addrs[s] = "127.0.0.1:" + strconv.Itoa(28081+i)
	}
	t.Cleanup(ch.stopServices)
	return ch
}

func (ch *chaosRun) startService(name string) {
	ch.t.Helper()
	logf, err := os.OpenFile(filepath.Join(ch.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		ch.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(ch.binDir, name))
	cmd.Env = append(os.Environ(), "FLYWHEEL_"+strings.ToUpper(name)+"_ADDR="+ch.addrs[name], "FLYWHEEL_LOG_LEVEL=info",
		"FLYWHEEL_TRAINER_REGISTRY_URL=http://"+ch.addrs["registry"])
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		ch.t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); _ = logf.Close() }()
	ch.mu.Lock()
	ch.procs[name] = cmd
	ch.mu.Unlock()
}

func (ch *chaosRun) startServices() {
	for _, s := range chaosServices {
		ch.startService(s)
	}
}

func (ch *chaosRun) stopServices() {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for name, cmd := range ch.procs {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _, _ = cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(12 * time.Second):
			ch.t.Errorf("%s did not stop within 12 s of SIGTERM", name)
			_ = cmd.Process.Kill()
		}
	}
}

// alive fails the test when a service process exited by itself: a service must never exit
// because a dependency went away.
func (ch *chaosRun) alive() {
	ch.t.Helper()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for name, cmd := range ch.procs {
		if cmd.ProcessState != nil || cmd.Process.Signal(syscall.Signal(0)) != nil {
			ch.t.Fatalf("%s exited by itself; see %s", name, filepath.Join(ch.logDir, name+".log"))
		}
	}
}

func (ch *chaosRun) killAndRestart(name string) {
	ch.t.Helper()
	ch.mu.Lock()
	cmd := ch.procs[name]
	ch.mu.Unlock()
	ch.t.Logf("SIGKILL %s", name)
	_ = cmd.Process.Kill()
	for cmd.Process.Signal(syscall.Signal(0)) == nil && cmd.ProcessState == nil {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	ch.startService(name)
}

// restartComponent stops one server of the stack (SIGTERM, as a rolling restart does),
// keeps it down for outage, and starts it again with the stack script.
func (ch *chaosRun) restartComponent(comp string, outage time.Duration) {
	ch.t.Helper()
	raw, err := os.ReadFile(filepath.Join(ch.stackDir, "pids", comp+".pid"))
	if err != nil {
		ch.t.Fatalf("pid of %s: %v", comp, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]))
	if err != nil {
		ch.t.Fatalf("pid of %s: %v", comp, err)
	}
	ch.t.Logf("restart %s (pid %d), down for %s", comp, pid, outage)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(outage)
	ch.alive()
	out, err := exec.Command(filepath.Join(ch.repo, "deploy/local/stack"), "up").CombinedOutput()
	if err != nil {
		ch.t.Fatalf("stack up after stopping %s: %v\n%s", comp, err, out)
	}
}

func (ch *chaosRun) waitAllReady(limit time.Duration) {
	ch.t.Helper()
	deadline := time.Now().Add(limit)
	for _, s := range chaosServices {
		for {
			ch.alive()
			code, body := httpGet("http://" + ch.addrs[s] + "/readyz")
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				ch.t.Fatalf("%s not ready %s after the faults: %d %s", s, limit, code, body)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

func httpGet(url string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// postTransactions posts batches until ctx ends, retrying each batch (same event ids) until
// ingest acknowledges it, as a client that must not lose data does.
func (ch *chaosRun) postTransactions(ctx context.Context, worker int) {
	client := http.Client{Timeout: 10 * time.Second}
	rng := rand.New(rand.NewPCG(uint64(worker), 7))
	for seq := 0; ctx.Err() == nil; seq++ {
		txs := make(map[string]chaosTx, chaosBatch)
		var body bytes.Buffer
		body.WriteByte('[')
		now := time.Now().UTC()
		for i := range chaosBatch {
			id := fmt.Sprintf("chaos-%d-%d-%d", worker, seq, i)
			tx := chaosTx{card: fmt.Sprintf("card-%d", rng.IntN(chaosCards)), amount: float64(rng.IntN(100000)) / 100}
			txs[id] = tx
			if i > 0 {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `{"transaction_id":%q,"card_id":%q,"amount":%v,"currency":"EUR","merchant_id":"m-%d","merchant_category":"grocery","country":"DE","channel":"pos","event_time":%q}`,
				id, tx.card, tx.amount, rng.IntN(50), now.Add(-time.Duration(rng.IntN(600))*time.Second).Format(time.RFC3339Nano))
		}
		body.WriteByte(']')
		time.Sleep(chaosPace) // a steady load, not a saturating one
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				ch.retries.Add(1)
				time.Sleep(200 * time.Millisecond)
			}
			resp, err := client.Post("http://"+ch.addrs["ingest"]+"/v1/streams/"+chaosStreamKey+"/events", "application/json", bytes.NewReader(body.Bytes()))
			if err != nil {
				continue // the service is down or restarting: retry the same batch
			}
			var res struct {
				Accepted, Rejected int
			}
			decodeErr := json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && decodeErr == nil {
				if res.Accepted != chaosBatch || res.Rejected != 0 {
					ch.setLoadErr(fmt.Errorf("batch %d/%d: accepted %d, rejected %d of %d", worker, seq, res.Accepted, res.Rejected, chaosBatch))
					return
				}
				ch.ackMu.Lock()
				for id, tx := range txs {
					ch.acked[id] = tx
				}
				ch.ackMu.Unlock()
				break
			}
			if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode < 500 {
				ch.setLoadErr(fmt.Errorf("batch %d/%d: status %d: a client error is never the right answer to a valid batch", worker, seq, resp.StatusCode))
				return
			}
		}
	}
}

// createModels registers models one at a time until ctx ends, retrying each until the
// registry acknowledges it (RESOURCE_ALREADY_EXISTS after a retry means an earlier attempt
// committed).
func (ch *chaosRun) createModels(ctx context.Context) {
	client := http.Client{Timeout: 10 * time.Second}
	prefix := fmt.Sprintf("chaos-%d", time.Now().UnixNano())
	for n := 0; ctx.Err() == nil; n++ {
		name := fmt.Sprintf("%s-%d", prefix, n)
		body := fmt.Sprintf(`{"name":%q}`, name)
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				ch.retries.Add(1)
				time.Sleep(200 * time.Millisecond)
			}
			resp, err := client.Post("http://"+ch.addrs["registry"]+"/api/2.0/mlflow/registered-models/create", "application/json", strings.NewReader(body))
			if err != nil {
				continue
			}
			var res struct {
				ErrorCode string `json:"error_code"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || (attempt > 0 && res.ErrorCode == "RESOURCE_ALREADY_EXISTS") {
				ch.ackMu.Lock()
				ch.models = append(ch.models, name)
				ch.ackMu.Unlock()
				break
			}
			if resp.StatusCode < 500 {
				ch.setLoadErr(fmt.Errorf("create model %s: status %d %s", name, resp.StatusCode, res.ErrorCode))
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (ch *chaosRun) setLoadErr(err error) {
	ch.ackMu.Lock()
	defer ch.ackMu.Unlock()
	if ch.loadErr == nil {
		ch.loadErr = err
	}
}

func (ch *chaosRun) failIfLoadFailed() {
	ch.t.Helper()
	if ch.loadErr != nil {
		ch.t.Fatal(ch.loadErr)
	}
}

func (ch *chaosRun) ackedEvents() int {
	ch.ackMu.Lock()
	defer ch.ackMu.Unlock()
	return len(ch.acked)
}

func (ch *chaosRun) clickhouse() clickhouse.Conn {
	ch.t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chaosEnv(ch.t, "FLYWHEEL_CLICKHOUSE_ADDR")},
		Auth: clickhouse.Auth{Database: "flywheel", Username: "default"}, DialTimeout: 5 * time.Second})
	if err != nil {
		ch.t.Fatal(err)
	}
	ch.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// verifyEventLog: every acknowledged event is in the event log once — no loss, and no
// duplicate once replays are collapsed (FINAL), which is how the log is documented to be read.
func (ch *chaosRun) verifyEventLog(limit time.Duration) {
	ch.t.Helper()
	conn := ch.clickhouse()
	ctx := context.Background()
	want := ch.ackedEvents()
	deadline := time.Now().Add(limit)
	var final, distinct, raw uint64
	for {
		row := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM events FINAL WHERE stream = ? AND event_id LIKE 'chaos-%'", chaosStreamKey)
		if err := row.Scan(&final, &distinct); err == nil && final >= uint64(want) {
			break
		}
		if time.Now().After(deadline) {
			ch.t.Fatalf("event log holds %d of %d acknowledged events after %s", final, want, limit)
		}
		time.Sleep(time.Second)
	}
	_ = conn.QueryRow(ctx, "SELECT count() FROM events WHERE stream = ? AND event_id LIKE 'chaos-%'", chaosStreamKey).Scan(&raw)
	rows, err := conn.Query(ctx, "SELECT event_id FROM events FINAL WHERE stream = ? AND event_id LIKE 'chaos-%'", chaosStreamKey)
	if err != nil {
		ch.t.Fatal(err)
	}
	logged := make(map[string]bool, want)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			ch.t.Fatal(err)
		}
		logged[id] = true
	}
	rows.Close()
	ch.ackMu.Lock()
	var missing []string
	for id := range ch.acked {
		if !logged[id] {
			missing = append(missing, id)
		}
	}
	ch.ackMu.Unlock()
	sort.Strings(missing)
	if len(missing) > 0 {
		ch.t.Fatalf("%d acknowledged events are not in the event log, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	if final != distinct || final != uint64(want) {
		ch.t.Fatalf("event log (FINAL) holds %d rows of %d distinct ids for %d acknowledged events", final, distinct, want)
	}
	ch.t.Logf("event log: all %d acknowledged events present once (FINAL); %d physical rows before merges", want, raw)
}

// verifyOnlineFeatures compares every card's online window values with the same values
// computed independently from the event log (and from what the clients were acknowledged).
func (ch *chaosRun) verifyOnlineFeatures(limit time.Duration) {
	ch.t.Helper()
	conn := ch.clickhouse()
	type agg struct {
		n   uint64
		sum float64
	}
	fromLog := map[string]agg{}
	rows, err := conn.Query(context.Background(), `SELECT entity, count(), sum(visitParamExtractFloat(payload, 'amount'))
		FROM events FINAL WHERE stream = ? AND event_id LIKE 'chaos-%' GROUP BY entity`, chaosStreamKey)
	if err != nil {
		ch.t.Fatal(err)
	}
	for rows.Next() {
		var card string
		var a agg
		if err := rows.Scan(&card, &a.n, &a.sum); err != nil {
			ch.t.Fatal(err)
		}
		fromLog[card] = a
	}
	rows.Close()
	fromAcks := map[string]agg{}
	ch.ackMu.Lock()
	for _, tx := range ch.acked {
		a := fromAcks[tx.card]
		a.n++
		a.sum += tx.amount
		fromAcks[tx.card] = a
	}
	ch.ackMu.Unlock()
	cards := make([]string, 0, len(fromAcks))
	for c, a := range fromAcks {
		if l := fromLog[c]; l.n != a.n || math.Abs(l.sum-a.sum) > 1e-6*math.Max(1, a.sum) {
			ch.t.Fatalf("card %s: event log has %d events summing %.2f, clients were acknowledged %d summing %.2f", c, l.n, l.sum, a.n, a.sum)
		}
		cards = append(cards, c)
	}
	sort.Strings(cards)

	entities := make([]map[string]string, len(cards))
	for i, c := range cards {
		entities[i] = map[string]string{"card_id": c}
	}
	req, _ := json.Marshal(map[string]any{"feature_service": "card_activity", "entities": entities})
	deadline := time.Now().Add(limit)
	var mismatch string
	for {
		mismatch = ""
		code, body := httpPost("http://"+ch.addrs["features"]+"/v1/features/online", req)
		if code != http.StatusOK {
			mismatch = fmt.Sprintf("lookup answered %d %s", code, body)
		} else {
			var res struct {
				FeatureNames []string `json:"feature_names"`
				Rows         []struct {
					Entity map[string]string `json:"entity"`
					Values []any             `json:"values"`
				} `json:"rows"`
			}
			if err := json.Unmarshal([]byte(body), &res); err != nil {
				ch.t.Fatalf("lookup answer: %v", err)
			}
			col := map[string]int{}
			for i, n := range res.FeatureNames {
				col[n] = i
			}
			for _, r := range res.Rows {
				want := fromLog[r.Entity["card_id"]]
				count, _ := r.Values[col["card_activity:txn_count_1h"]].(float64)
				sum, _ := r.Values[col["card_activity:amount_sum_1h"]].(float64)
				if uint64(count) != want.n || math.Abs(sum-want.sum) > 1e-6*math.Max(1, want.sum) {
					mismatch = fmt.Sprintf("card %s: online txn_count_1h %v amount_sum_1h %.2f, event log %d and %.2f",
						r.Entity["card_id"], count, sum, want.n, want.sum)
					break
				}
			}
		}
		if mismatch == "" {
			break
		}
		if time.Now().After(deadline) {
			ch.t.Errorf("online values differ from the event log %s after the faults: %s", limit, mismatch)
			return
		}
		time.Sleep(time.Second)
	}
	ch.t.Logf("online store: txn_count_1h and amount_sum_1h of all %d cards equal the event log", len(cards))
}

func httpPost(url string, body []byte) (int, string) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// verifyRegistry: every acknowledged model exists, and its model_created event reached the
// registry topic — possibly more than once after a crash, but always under one event id.
func (ch *chaosRun) verifyRegistry(limit time.Duration) {
	ch.t.Helper()
	for _, name := range ch.models {
		code, body := httpGet("http://" + ch.addrs["registry"] + "/api/2.0/mlflow/registered-models/get?name=" + name)
		if code != http.StatusOK {
			ch.t.Fatalf("acknowledged model %s: %d %s", name, code, body)
		}
	}
	want := map[string]bool{}
	for _, m := range ch.models {
		want[m] = true
	}
	ids := map[string]map[string]bool{} // model → event ids of model_created
	deadline := time.Now().Add(limit)
	brokers := strings.Split(chaosEnv(ch.t, "FLYWHEEL_KAFKA_BROKERS"), ",")
	for partition := range 3 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: schemas.TopicRegistry, Partition: partition, MaxWait: 200 * time.Millisecond})
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		for {
			lag, err := r.ReadLag(ctx)
			if err != nil || lag == 0 {
				break
			}
			m, err := r.ReadMessage(ctx)
			if err != nil {
				break
			}
			var ev schemas.RegistryEvent
			if json.Unmarshal(m.Value, &ev) != nil || ev.Type != schemas.RegistryModelCreated || !want[ev.Model] {
				continue
			}
			if ids[ev.Model] == nil {
				ids[ev.Model] = map[string]bool{}
			}
			ids[ev.Model][ev.ID] = true
		}
		cancel()
		_ = r.Close()
	}
	var missing, multiple []string
	for _, m := range ch.models {
		switch n := len(ids[m]); {
		case n == 0:
			missing = append(missing, m)
		case n > 1:
			multiple = append(multiple, m)
		}
	}
	if len(missing) > 0 || len(multiple) > 0 {
		ch.t.Errorf("registry events: %d acknowledged models without a model_created event (e.g. %v), %d with more than one event id (e.g. %v)",
			len(missing), missing[:min(3, len(missing))], len(multiple), multiple[:min(3, len(multiple))])
		return
	}
	ch.t.Logf("registry: all %d acknowledged models present, each with one model_created event", len(ch.models))
}
