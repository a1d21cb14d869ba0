package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/trainer"
)

// TestTrainFraudOnTheRealStack is the trainer's acceptance check: labelled card payments go in
// through ingest, features are computed by the features service, and a retrain request makes
// the trainer build the dataset from the event log and the feature store, train, register a
// version with its dataset version, signature and reference profile, and promote it; a drift
// event (delivered twice, plus a second one inside the cooldown) retrains exactly once; the
// version validates; the run reproduces bit for bit.
func TestTrainFraudOnTheRealStack(t *testing.T) {
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
	shuffled := testenv.Unique(t, "sh")
	if err := os.WriteFile(filepath.Join(streamsDir, shuffled+".json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Topics(t, kcfg, schemas.RawTopic(labels), schemas.EventsTopic(labels), schemas.DLQTopic(labels), schemas.TopicDrift,
		schemas.RawTopic(shuffled), schemas.EventsTopic(shuffled), schemas.DLQTopic(shuffled))
	model := strings.ReplaceAll(testenv.Unique(t, "m"), "-", "_")
	model = model[:min(len(model), 60)]
	spec, _ := fs.ReadFile(schemas.Models(), "fraud.yaml")
	s := strings.Replace(string(spec), "name: fraud", "name: "+model, 1)
	s = strings.Replace(s, "prediction_stream: transactions", "prediction_stream: "+stream, 1)
	s = strings.Replace(s, "stream: fraud_labels", "stream: "+labels, 1)
	s = strings.ReplaceAll(s, "card_activity:", view+":")
	s = strings.Replace(s, "min_rows: 500", "min_rows: 200", 1)
	s = strings.Replace(s, "num_trees: 200", "num_trees: 60", 1)
	modelsDir := filepath.Join(dir, "models")
	_ = os.MkdirAll(modelsDir, 0o755)
	if err := os.WriteFile(filepath.Join(modelsDir, model+".yaml"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	// The same model on shuffled labels: nothing to learn, so the gates must refuse it.
	noise := model[:min(len(model), 55)] + "_noise"
	sn := strings.Replace(strings.Replace(s, "name: "+model, "name: "+noise, 1), "stream: "+labels, "stream: "+shuffled, 1)
	if err := os.WriteFile(filepath.Join(modelsDir, noise+".yaml"), []byte(sn), 0o644); err != nil {
		t.Fatal(err)
	}

	vars, addr := platformVars(t, ch.Database, prefix, streamsDir, viewsDir, modelsDir, "R")
	servingVars(t, vars, model, viewsDir, prefix+"f:", addr["REGISTRY"], filepath.Join(dir, "serving-cache"))
	hook := monitorVars(t, vars, modelsDir, viewsDir, addr["REGISTRY"])
	done := runServices(t, vars, 6)
	for _, svc := range []string{"INGEST", "FEATURES", "REGISTRY", "TRAINER"} {
		testenv.WaitReady(t, "http://"+addr[svc], done)
	}

	// Two days of payments of 80 cards; large amounts are mostly fraud. Labels an hour later
	// (or now, for the last hour).
	rng := rand.New(rand.NewPCG(11, 12))
	now := time.Now().UTC().Truncate(time.Second)
	const n = 2400
	var txs, lbs, frauds []string
	for i := range n {
		at := now.Add(-48 * time.Hour).Add(time.Duration(i) * 48 * time.Hour / n)
		amount := rng.ExpFloat64() * 60
		fraud := amount > 150 && rng.Float64() < 0.7 || rng.Float64() < 0.03
		card := fmt.Sprintf("c-%d", rng.IntN(80))
		txs = append(txs, fmt.Sprintf(`{"transaction_id":"t-%d","card_id":%q,"amount":%.2f,"currency":"EUR","merchant_id":"m-%d","merchant_category":"grocery","country":"DE","channel":%q,"event_time":%q}`,
			i, card, amount, rng.IntN(30), []string{"pos", "ecom", "atm"}[rng.IntN(3)], at.Format(time.RFC3339)))
		frauds = append(frauds, fmt.Sprint(fraud))
		lbs = append(lbs, fmt.Sprintf(`{"transaction_id":"t-%d","card_id":%q,"is_fraud":%v,"event_time":%q}`, i, card, fraud, labelAt(at, now).Format(time.RFC3339)))
	}
	post := func(stream string, items []string) {
		for i := 0; i < len(items); i += 500 {
			body := "[" + strings.Join(items[i:min(i+500, len(items))], ",") + "]"
			resp, err := http.Post("http://"+addr["INGEST"]+"/v1/streams/"+stream+"/events", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"rejected":0`)) {
				t.Fatalf("ingest %s: %d %s", stream, resp.StatusCode, b)
			}
		}
	}
	post(stream, txs)
	post(labels, lbs)
	rng.Shuffle(len(frauds), func(i, j int) { frauds[i], frauds[j] = frauds[j], frauds[i] })
	var noisy []string
	for i, l := range lbs {
		noisy = append(noisy, strings.Replace(l, `"is_fraud":`+map[bool]string{true: "true", false: "false"}[strings.Contains(l, `"is_fraud":true`)], `"is_fraud":`+frauds[i], 1))
	}
	post(shuffled, noisy)
	chConn, err := chx.Open(testenv.Context(t), ch)
	if err != nil {
		t.Fatal(err)
	}
	defer chConn.Close()
	count := func(q string, args ...any) uint64 {
		var c uint64
		_ = chConn.QueryRow(context.Background(), q, args...).Scan(&c)
		return c
	}
	waitUntil(t, "the event log and the feature store", func() bool {
		return count("SELECT count() FROM events FINAL WHERE stream IN (?, ?, ?)", stream, labels, shuffled) == 3*n &&
			count("SELECT count() FROM feature_updates WHERE view = ?", view) >= n
	})

	trainer := "http://" + addr["TRAINER"]
	runOf := func(body string) map[string]any {
		resp, err := http.Post(trainer+"/v1/train", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Run map[string]any `json:"run"`
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &out) != nil {
			t.Fatalf("POST /v1/train: %d %s", resp.StatusCode, b)
		}
		return out.Run
	}
	wait := func(id string) map[string]any {
		deadline := time.Now().Add(3 * time.Minute)
		for {
			resp, err := http.Get(trainer + "/v1/train/runs/" + id)
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Run map[string]any `json:"run"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if st := out.Run["stage"]; st == "succeeded" || st == "failed" {
				return out.Run
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s not done after 3 minutes: %v", id, out.Run)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	run := wait(runOf(`{"model":"` + model + `"}`)["id"].(string))
	if run["stage"] != "succeeded" || run["promoted"] != true || run["model_version"] != 1.0 || run["dataset_version"] == "" {
		t.Fatalf("first run: %v", run)
	}
	registry := "http://" + addr["REGISTRY"]
	getJSON := func(url string, out any) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || json.Unmarshal(b, out) != nil {
			t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
		}
	}
	var v struct {
		Version struct {
			Lineage   map[string]any   `json:"lineage"`
			Signature []map[string]any `json:"signature"`
			Profile   map[string]any   `json:"profile"`
			Aliases   []string         `json:"aliases"`
		} `json:"version"`
	}
	getJSON(registry+"/v1/models/"+model+"/versions/1", &v)
	if v.Version.Lineage["dataset_version"] != run["dataset_version"] || len(v.Version.Signature) != 15 ||
		v.Version.Profile["sample"] == nil || len(v.Version.Aliases) != 1 || v.Version.Aliases[0] != "champion" {
		t.Fatalf("version 1: lineage %v, %d signature fields, profile keys %d, aliases %v", v.Version.Lineage, len(v.Version.Signature), len(v.Version.Profile), v.Version.Aliases)
	}

	checkServingFirstChampion(t, "http://"+addr["SERVING"], model, chConn)
	checkBatchScoring(t, vars, modelsDir, model, chConn)
	checkOpenInference(t, "http://"+addr["SERVING"], vars["FLYWHEEL_SERVING_GRPC_ADDR"], model)
	checkImportedXGBoost(t, vars, "http://"+addr["SERVING"], registry0(addr), model[:min(len(model), 55)]+"_xgb")

	// A drift event delivered twice and a second event inside the cooldown: one retrain.
	p := kafkax.NewProducer(kcfg)
	defer p.Close()
	drift := func(id string) kafkax.Message {
		b, _ := json.Marshal(schemas.DriftEvent{ID: id, Model: model, Version: 1, Kind: schemas.DriftKind("data"), Feature: "amount", Method: "psi",
			Score: 0.4, Threshold: 0.2, DetectedAt: time.Now().UTC()})
		return kafkax.Message{Topic: schemas.TopicDrift, Key: []byte(model), Value: b}
	}
	if err := p.Produce(testenv.Context(t), drift("d-1"), drift("d-1"), drift("d-2")); err != nil {
		t.Fatal(err)
	}
	var versions struct {
		Aliases []map[string]any `json:"aliases"`
	}
	waitUntil(t, "a drift-triggered version 2", func() bool {
		var vv struct {
			Version struct{ Version int } `json:"version"`
		}
		resp, err := http.Get(registry + "/v1/models/" + model + "/versions/2")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&vv) == nil && vv.Version.Version == 2
	})
	time.Sleep(3 * time.Second)
	if resp, _ := http.Get(registry + "/v1/models/" + model + "/versions/3"); resp != nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("a redelivered or in-cooldown drift event retrained again (version 3: %d)", resp.StatusCode)
		}
	}
	getJSON(registry+"/v1/models/"+model+"/aliases", &versions)
	checkDriftRunsSurviveARestart(t, registry, modelsDir, model)
	checkHotSwapUnderLoad(t, "http://"+addr["SERVING"], registry, model, 1, 2)

	// The gates from any CI, and reproduction.
	resp, err := http.Post(trainer+"/v1/models/"+model+"/validate", "application/json", strings.NewReader(`{"candidate":1}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"gates"`)) {
		t.Fatalf("validate: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Post(trainer+"/v1/runs/"+run["registry_run_id"].(string)+"/reproduce", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"identical":true`)) {
		t.Fatalf("reproduce: %d %s", resp.StatusCode, b)
	}
	// Shuffled labels: a version is registered, but it stays challenger, the failing gate named.
	nr := wait(runOf(`{"model":"` + noise + `"}`)["id"].(string))
	if nr["stage"] != "succeeded" || nr["promoted"] != false {
		t.Fatalf("shuffled-label run: %v", nr)
	}
	resp, err = http.Post(trainer+"/v1/models/"+noise+"/validate", "application/json", strings.NewReader(`{"candidate":1}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"passed":false`)) || !bytes.Contains(b, []byte(`threshold: `)) {
		t.Fatalf("validate of the shuffled-label version must fail naming the gate: %d %s", resp.StatusCode, b)
	}
	var noiseAliases struct {
		Aliases []map[string]any `json:"aliases"`
	}
	getJSON(registry+"/v1/models/"+noise+"/aliases", &noiseAliases)
	if len(noiseAliases.Aliases) != 1 || noiseAliases.Aliases[0]["alias"] != "challenger" || !strings.Contains(fmt.Sprint(noiseAliases.Aliases[0]["reason"]), "gates failed: auc threshold") {
		t.Fatalf("shuffled-label version aliases: %v", noiseAliases.Aliases)
	}
	t.Logf("aliases after the drift retrain: %v; validate: %s", versions.Aliases, b)
	checkMonitorDetectsAShift(t, "http://"+addr["SERVING"], model, chConn, hook)
}

func registry0(addr map[string]string) string { return "http://" + addr["REGISTRY"] }

// labelAt is an hour after the payment, but never in the future.
func labelAt(at, now time.Time) time.Time {
	if l := at.Add(time.Hour); l.Before(now) {
		return l
	}
	return now
}

// TestDriftIdempotencySurvivesATrainerRestart: a drift event retrains; the trainer stops and a
// new one starts; the event read again (by a consumer group without its commit, as after a
// crash before the commit, and once more as a re-publication) and a second event inside the
// cooldown start nothing. The new trainer knows them as duplicate and coalesced from the
// registry's record alone, and the coalesced event is recorded on the registry run.
func TestDriftIdempotencySurvivesATrainerRestart(t *testing.T) {
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
	model := strings.ReplaceAll(testenv.Unique(t, "m"), "-", "_")
	model = model[:min(len(model), 60)]
	modelsDir := filepath.Join(dir, "models")
	_ = os.MkdirAll(modelsDir, 0o755)
	if err := os.WriteFile(filepath.Join(modelsDir, model+".yaml"), []byte(privateFraudSpec(t, model, stream, labels, view)), 0o644); err != nil {
		t.Fatal(err)
	}

	regPrefix := testenv.Unique(t, "R") + "_"
	vars := map[string]string{"FLYWHEEL_CLICKHOUSE_DATABASE": ch.Database, "FLYWHEEL_LOG_LEVEL": "warn",
		"FLYWHEEL_INGEST_STREAMS_DIR": streamsDir, "FLYWHEEL_INGEST_GROUP": testenv.Unique(t, "g"),
		"FLYWHEEL_INGEST_REDIS_PREFIX": prefix + "ingest:", "FLYWHEEL_FEATURES_VIEWS_DIR": viewsDir,
		"FLYWHEEL_FEATURES_GROUP": testenv.Unique(t, "g"), "FLYWHEEL_FEATURES_REDIS_PREFIX": prefix + "f:",
		"FLYWHEEL_REGISTRY_PREFIX": regPrefix, "FLYWHEEL_TRAINER_MODELS_DIR": modelsDir, "FLYWHEEL_TRAINER_VIEWS_DIR": viewsDir}
	addr := map[string]string{}
	for _, svc := range []string{"INGEST", "FEATURES", "REGISTRY"} {
		addr[svc] = freePort(t)
		vars["FLYWHEEL_"+svc+"_ADDR"] = addr[svc]
	}
	registry := "http://" + addr["REGISTRY"]
	done := runServices(t, vars, 3) // ingest, features, registry
	for _, svc := range []string{"INGEST", "FEATURES", "REGISTRY"} {
		testenv.WaitReady(t, "http://"+addr[svc], done)
	}

	// A day of payments of 40 cards, large amounts mostly fraud, labelled an hour later.
	rng := rand.New(rand.NewPCG(21, 22))
	now := time.Now().UTC().Truncate(time.Second)
	const n = 600
	var txs, lbs []string
	for i := range n {
		at := now.Add(-24 * time.Hour).Add(time.Duration(i) * 24 * time.Hour / n)
		amount := rng.ExpFloat64() * 60
		fraud := amount > 120 && rng.Float64() < 0.8 || rng.Float64() < 0.03
		card := fmt.Sprintf("c-%d", rng.IntN(40))
		txs = append(txs, fmt.Sprintf(`{"transaction_id":"t-%d","card_id":%q,"amount":%.2f,"currency":"EUR","merchant_id":"m-%d","merchant_category":"grocery","country":"DE","channel":"pos","event_time":%q}`,
			i, card, amount, rng.IntN(30), at.Format(time.RFC3339)))
		lbs = append(lbs, fmt.Sprintf(`{"transaction_id":"t-%d","card_id":%q,"is_fraud":%v,"event_time":%q}`, i, card, fraud, labelAt(at, now).Format(time.RFC3339)))
	}
	for _, batch := range []struct {
		stream string
		items  []string
	}{{stream, txs}, {labels, lbs}} {
		resp, err := http.Post("http://"+addr["INGEST"]+"/v1/streams/"+batch.stream+"/events", "application/json",
			strings.NewReader("["+strings.Join(batch.items, ",")+"]"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"rejected":0`)) {
			t.Fatalf("ingest %s: %d %s", batch.stream, resp.StatusCode, b)
		}
	}
	chConn, err := chx.Open(testenv.Context(t), ch)
	if err != nil {
		t.Fatal(err)
	}
	defer chConn.Close()
	count := func(q string, args ...any) uint64 {
		var c uint64
		_ = chConn.QueryRow(context.Background(), q, args...).Scan(&c)
		return c
	}
	waitUntil(t, "the event log and the feature store", func() bool {
		return count("SELECT count() FROM events FINAL WHERE stream IN (?, ?)", stream, labels) == 2*n &&
			count("SELECT count() FROM feature_updates WHERE view = ?", view) >= n
	})

	reg := client.New(registry, "", "e2e", &http.Client{Timeout: 30 * time.Second})
	exp, err := reg.EnsureExperiment(testenv.Context(t), model)
	if err != nil {
		t.Fatal(err)
	}
	driftRuns := func() []client.Run {
		rs, err := reg.SearchRuns(testenv.Context(t), []string{exp}, "tags.`flywheel.trigger` LIKE 'drift:%'", 10)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	p := kafkax.NewProducer(kcfg)
	defer p.Close()
	detected := time.Now().UTC()
	drift := func(id string, at time.Time) kafkax.Message {
		b, _ := json.Marshal(schemas.DriftEvent{ID: id, Model: model, Version: 1, Kind: schemas.DriftKind("data"), Feature: "amount", Method: "psi",
			Score: 0.4, Threshold: 0.2, DetectedAt: at})
		return kafkax.Message{Topic: schemas.TopicDrift, Key: []byte(model), Value: b}
	}

	// The first trainer retrains on d-1.
	first := startTrainer(t, vars, testenv.Unique(t, "g"))
	if err := p.Produce(testenv.Context(t), drift("d-1", detected)); err != nil {
		t.Fatal(err)
	}
	var run client.Run
	eventually(t, "the drift run of d-1 finished in the registry", 4*time.Minute, func() bool {
		rs := driftRuns()
		if len(rs) == 1 && rs[0].Info.Status != "RUNNING" {
			run = rs[0]
		}
		return run.Info.ID != ""
	})
	if run.Info.Status != "FINISHED" || run.Tag("flywheel.trigger") != "drift:d-1" || run.Tag("flywheel.trainer_run") == "" {
		t.Fatalf("the drift run: %+v", run)
	}
	if got := first.metric(t, "started"); got != 1 {
		t.Fatalf("the first trainer started %v drift runs", got)
	}
	first.stop(t)

	// Start-up waits for the registry's record, and /readyz says so.
	noRegistry := maps.Clone(vars)
	noRegistry["FLYWHEEL_TRAINER_REGISTRY_URL"] = "http://" + freePort(t)
	waiting := startTrainerUnready(t, noRegistry, testenv.Unique(t, "g"))
	eventually(t, "/readyz naming the past drift runs", 30*time.Second, func() bool {
		code, body := waiting.get(t, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "past drift runs")
	})
	waiting.stop(t)

	// The second trainer, in a group that never committed d-1, reads it again; it is then
	// published once more, and d-2 follows inside the cooldown.
	second := startTrainer(t, vars, testenv.Unique(t, "g"))
	noRetrain := func() {
		if got := second.metric(t, "started"); got != 0 {
			t.Fatalf("the restarted trainer retrained on a drift event it should know (%v runs started)", got)
		}
	}
	eventually(t, "d-1 read again", 30*time.Second, func() bool { noRetrain(); return second.metric(t, "duplicate") == 1 })
	if err := p.Produce(testenv.Context(t), drift("d-1", detected), drift("d-2", time.Now().UTC())); err != nil {
		t.Fatal(err)
	}
	eventually(t, "d-1 twice a duplicate and d-2 coalesced", 30*time.Second, func() bool {
		noRetrain()
		return second.metric(t, "duplicate") == 2 && second.metric(t, "coalesced") == 1
	})
	code, body := second.get(t, "/v1/train/runs/"+run.Tag("flywheel.trainer_run"))
	if code != http.StatusOK || !strings.Contains(body, `"event_id":"d-2"`) || !strings.Contains(body, `"registry_run_id":"`+run.Info.ID+`"`) {
		t.Fatalf("the restarted trainer's record of the run: %d %s", code, body)
	}
	time.Sleep(3 * time.Second) // a run started anyway would have reached the registry by now
	rs := driftRuns()
	if len(rs) != 1 || rs[0].Info.ID != run.Info.ID || rs[0].Tag("flywheel.coalesced") != `["d-2"]` {
		t.Fatalf("one drift run, holding d-2 as coalesced: %+v", rs)
	}
	if _, err := reg.GetVersion(testenv.Context(t), model, 2); !client.IsNotFound(err) {
		t.Fatalf("no second version: %v", err)
	}
}

// privateFraudSpec is the shipped fraud spec for a model of the test's own on its private
// streams and view, smaller so it trains in seconds.
func privateFraudSpec(t *testing.T, model, stream, labels, view string) string {
	t.Helper()
	spec, err := fs.ReadFile(schemas.Models(), "fraud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(spec), "name: fraud", "name: "+model, 1)
	s = strings.Replace(s, "prediction_stream: transactions", "prediction_stream: "+stream, 1)
	s = strings.Replace(s, "stream: fraud_labels", "stream: "+labels, 1)
	s = strings.ReplaceAll(s, "card_activity:", view+":")
	s = strings.Replace(s, "min_rows: 500", "min_rows: 200", 1)
	return strings.Replace(s, "num_trees: 200", "num_trees: 60", 1)
}

// trainerProc is a trainer service run in this process.
type trainerProc struct {
	base   string
	cancel context.CancelFunc
	done   chan error
}

// startTrainer runs a trainer with vars and its own address, consuming drift in group, and
// waits until it is ready.
func startTrainer(t *testing.T, vars map[string]string, group string) *trainerProc {
	t.Helper()
	tp := startTrainerUnready(t, vars, group)
	testenv.WaitReady(t, tp.base, tp.done)
	return tp
}

func startTrainerUnready(t *testing.T, vars map[string]string, group string) *trainerProc {
	t.Helper()
	vars = maps.Clone(vars)
	vars["FLYWHEEL_TRAINER_ADDR"], vars["FLYWHEEL_TRAINER_GROUP"] = freePort(t), group
	if _, ok := vars["FLYWHEEL_TRAINER_REGISTRY_URL"]; !ok {
		vars["FLYWHEEL_TRAINER_REGISTRY_URL"] = "http://" + vars["FLYWHEEL_REGISTRY_ADDR"]
	}
	var cfg trainer.Config
	if err := config.Load(&cfg, nil, func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tp := &trainerProc{base: "http://" + vars["FLYWHEEL_TRAINER_ADDR"], cancel: cancel, done: make(chan error, 1)}
	go func() { tp.done <- trainer.Run(ctx, cfg) }()
	t.Cleanup(func() { cancel() })
	return tp
}

// stop shuts the trainer down as SIGTERM does and waits for it (a trainer stopped while it
// waits at start-up returns the cancellation).
func (tp *trainerProc) stop(t *testing.T) {
	t.Helper()
	tp.cancel()
	select {
	case err := <-tp.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("trainer stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("trainer not stopped after 30 s")
	}
}

func (tp *trainerProc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(tp.base + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric is the trainer's count of drift events by what they led to.
func (tp *trainerProc) metric(t *testing.T, outcome string) float64 {
	t.Helper()
	code, body := tp.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	f, ok := families["flywheel_trainer_retrain_requests_total"]
	if !ok {
		return 0
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["trigger"] == "drift" && labels["outcome"] == outcome {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// eventually polls cond every 200 ms until it holds, failing the test after timeout.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
