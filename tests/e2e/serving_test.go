package e2e_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/cli"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/features"
	"github.com/flywheel-ml/flywheel/services/features/views"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	pb "github.com/flywheel-ml/flywheel/services/serving/v2/pb"
	"github.com/flywheel-ml/flywheel/services/trainer"
	"github.com/flywheel-ml/flywheel/services/trainer/runs"
)

// servingVars configures serving and the monitor's landing for a test's private model,
// views, online store and registry.
func servingVars(t *testing.T, vars map[string]string, model, viewsDir, redisPrefix, registryAddr, cacheDir string) {
	vars["FLYWHEEL_SERVING_REGISTRY_URL"] = "http://" + registryAddr
	vars["FLYWHEEL_SERVING_VIEWS_DIR"] = viewsDir
	vars["FLYWHEEL_SERVING_REDIS_PREFIX"] = redisPrefix
	vars["FLYWHEEL_SERVING_CACHE_DIR"] = cacheDir
	// every model with a champion (the fraud model and an imported one)
	vars["FLYWHEEL_SERVING_MODELS"] = ""
	vars["FLYWHEEL_SERVING_GRPC_ADDR"] = freePort(t)
	vars["FLYWHEEL_MONITOR_LANDING_GROUP"] = vars["FLYWHEEL_TRAINER_GROUP"] + "-landing"
	// the shared test stack's predictions topic holds earlier runs' records: land only this run's
	vars["FLYWHEEL_MONITOR_LANDING_FROM_LATEST"] = "true"
}

type predictAnswer struct {
	Model       string `json:"model"`
	Version     int    `json:"version"`
	RequestID   string `json:"request_id"`
	Predictions []struct {
		Version int     `json:"version"`
		Alias   string  `json:"alias"`
		Score   float64 `json:"score"`
		Label   *int    `json:"label"`
	} `json:"predictions"`
}

func predictCall(serving, model, requestID, pin, body string) (int, predictAnswer, string, error) {
	req, _ := http.NewRequest(http.MethodPost, serving+"/v1/models/"+model+":predict", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", requestID)
	if pin != "" {
		req.Header.Set("X-Flywheel-Model-Version", pin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, predictAnswer{}, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out predictAnswer
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out, string(b), nil
}

// checkServingFirstChampion: serving loads the first champion by itself, answers a batch in
// one call with its version, and every prediction lands once in ClickHouse with its inputs.
func checkServingFirstChampion(t *testing.T, serving, model string, ch driver.Conn) {
	t.Helper()
	waitUntil(t, "serving ready with the first champion", func() bool {
		resp, err := http.Get(serving + "/v1/models/" + model)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200 && strings.Contains(string(b), `"ready":true`)
	})
	body := `{"instances":[
		{"card_id":"c-1","amount":900,"merchant_category":"grocery","channel":"ecom","country":"DE","transaction_id":"live-1"},
		{"card_id":"c-2","amount":3.5,"merchant_category":"grocery","channel":"pos","country":"DE","transaction_id":"live-2"},
		{"card_id":"nobody","amount":20,"merchant_category":"grocery","channel":"pos","country":"DE"}]}`
	status, out, raw, err := predictCall(serving, model, "e2e-batch", "", body)
	if err != nil || status != 200 || out.Version != 1 || len(out.Predictions) != 3 || out.RequestID != "e2e-batch" {
		t.Fatalf("predict: %d %s (%v)", status, raw, err)
	}
	if !(out.Predictions[0].Score > out.Predictions[1].Score) || out.Predictions[0].Label == nil {
		t.Fatalf("a 900 EUR online payment scored %v, a 3.50 one %v: %s", out.Predictions[0].Score, out.Predictions[1].Score, raw)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"instances":[{"amount":1}]}`, `card_id`},
		{`{"instances":[{"card_id":"c-1","amount":"lots"}]}`, `not a number`},
		{`{"instances":[]}`, `no instances`},
	} {
		if status, _, raw, _ := predictCall(serving, model, "bad", "", bad.body); status != 400 || !strings.Contains(raw, bad.want) {
			t.Errorf("%s: %d %s, want 400 naming %s", bad.body, status, raw, bad.want)
		}
	}
	if status, _, raw, _ := predictCall(serving, "no_such_model", "x", "", `{"instances":[{"card_id":"c"}]}`); status != 404 {
		t.Errorf("unknown model: %d %s", status, raw)
	}
	var rows []struct {
		RequestID string `ch:"request_id"`
		Version   uint32 `ch:"version"`
		Sources   string `ch:"sources"`
		Request   string `ch:"request"`
		Alias     string `ch:"alias"`
	}
	waitUntil(t, "the batch's predictions in ClickHouse", func() bool {
		rows = rows[:0]
		err := ch.Select(context.Background(), &rows, "SELECT request_id, version, sources, request, alias FROM predictions FINAL WHERE model = ? AND request_id LIKE 'e2e-batch/%' ORDER BY request_id", model)
		return err == nil && len(rows) == 3
	})
	if rows[0].Version != 1 || rows[0].Alias != "champion" || !strings.Contains(rows[0].Sources, `"fetched"`) || !strings.Contains(rows[0].Request, `"transaction_id":"live-1"`) {
		t.Fatalf("logged prediction: %+v", rows[0])
	}
	if !strings.Contains(rows[2].Sources, `"defaulted"`) {
		t.Fatalf("an unknown card's features are not logged as defaulted: %+v", rows[2])
	}
}

// checkHotSwapUnderLoad moves the champion back and forth between two versions while
// clients predict without pause: no request fails, and both versions answer.
func checkHotSwapUnderLoad(t *testing.T, serving, registry, model string, from, to int) {
	t.Helper()
	moveTo := func(v int) {
		resp, err := http.Post(registry+"/v1/models/"+model+"/aliases/champion", "application/json",
			bytes.NewReader([]byte(fmt.Sprintf(`{"version":%d,"reason":"e2e hot swap"}`, v))))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("move champion to %d: %d %s", v, resp.StatusCode, b)
		}
	}
	var ok, failed atomic.Int64
	var mu sync.Mutex
	seen := map[int]int{}
	var latencies []time.Duration
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"instances":[{"card_id":"c-%d","amount":%d,"merchant_category":"grocery","channel":"pos","country":"DE"}]}`, i%80, 10+i%300)
				began := time.Now()
				status, out, raw, err := predictCall(serving, model, fmt.Sprintf("swap-%d-%d", c, i), "", body)
				took := time.Since(began)
				if err != nil || status != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s %v", status, raw, err))
					continue
				}
				ok.Add(1)
				mu.Lock()
				seen[out.Version]++
				latencies = append(latencies, took)
				mu.Unlock()
			}
		}(c)
	}
	servedChampion := func() int {
		resp, err := http.Get(serving + "/v1/models/" + model)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		var m struct {
			Versions []struct {
				Version int    `json:"version"`
				Alias   string `json:"alias"`
			} `json:"versions"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&m)
		for _, v := range m.Versions {
			if v.Alias == "champion" {
				return v.Version
			}
		}
		return 0
	}
	for round := 0; round < 3; round++ {
		for _, v := range []int{to, from} {
			moveTo(v)
			waitUntil(t, fmt.Sprintf("serving to switch to version %d", v), func() bool { return servedChampion() == v })
			time.Sleep(300 * time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during 6 hot swaps; first: %v", failed.Load(), failed.Load()+ok.Load(), firstFailure.Load())
	}
	if seen[from] == 0 || seen[to] == 0 {
		t.Fatalf("versions that answered during the swaps: %v", seen)
	}
	slices.Sort(latencies)
	q := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	t.Logf("hot swaps under load: %d requests from 4 closed-loop clients, 0 failed, answered by version %v; latency p50 %v p99 %v max %v",
		ok.Load(), seen, q(0.5), q(0.99), latencies[len(latencies)-1])
}

// checkBatchScoring scores the last six hours of stored payments through serving with
// point-in-time features, and finds each one in the prediction log with its features supplied.
func checkBatchScoring(t *testing.T, vars map[string]string, modelsDir, model string, ch driver.Conn) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	lookup := func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	root := cli.New(&stdout, &stderr, lookup)
	now := time.Now().UTC()
	root.SetArgs([]string{"predict", "batch", model, "--models-dir", modelsDir, "--serving-url", "http://" + vars["FLYWHEEL_SERVING_ADDR"],
		"--features-url", "http://" + vars["FLYWHEEL_FEATURES_ADDR"], "--from", now.Add(-6 * time.Hour).Format(time.RFC3339),
		"--to", now.Add(time.Minute).Format(time.RFC3339), "-o", "json"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("predict batch: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	var sum struct {
		Events uint64 `json:"events"`
		Scored int    `json:"scored"`
		Failed int    `json:"failed"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || sum.Scored == 0 || uint64(sum.Scored) != sum.Events || sum.Failed != 0 {
		t.Fatalf("predict batch summary: %s (%v)", stdout.String(), err)
	}
	var n uint64
	waitUntil(t, "the batch's predictions in ClickHouse", func() bool {
		err := ch.QueryRow(context.Background(), "SELECT count() FROM predictions FINAL WHERE model = ? AND request_id LIKE 'batch-%' AND position(sources, '\"supplied\"') > 0", model).Scan(&n)
		return err == nil && n == uint64(sum.Scored)
	})
	t.Logf("batch scoring: %d stored payments scored with point-in-time features", sum.Scored)
}

// checkOpenInference scores one payment over the Open Inference Protocol — REST JSON, REST
// with binary tensors, and gRPC — and gets the same score as the own API, with the version.
func checkOpenInference(t *testing.T, serving, grpcAddr, model string) {
	t.Helper()
	_, own, raw, err := predictCall(serving, model, "oip-own", "", `{"instances":[{"card_id":"c-1","amount":900,"merchant_category":"grocery","channel":"ecom","country":"DE"}]}`)
	if err != nil || len(own.Predictions) != 1 {
		t.Fatalf("own API: %s %v", raw, err)
	}
	want := own.Predictions[0].Score
	body := `{"id":"oip-1","inputs":[
		{"name":"card_id","datatype":"BYTES","shape":[1],"data":["c-1"]},
		{"name":"amount","datatype":"FP64","shape":[1],"data":[900]},
		{"name":"merchant_category","datatype":"BYTES","shape":[1],"data":["grocery"]},
		{"name":"channel","datatype":"BYTES","shape":[1],"data":["ecom"]},
		{"name":"country","datatype":"BYTES","shape":[1],"data":["DE"]}]}`
	resp, err := http.Post(serving+"/v2/models/"+model+"/infer", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var v2 struct {
		ID           string `json:"id"`
		ModelVersion string `json:"model_version"`
		Outputs      []struct {
			Name string    `json:"name"`
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &v2) != nil || v2.ID != "oip-1" || v2.ModelVersion != "1" || len(v2.Outputs) == 0 ||
		v2.Outputs[0].Name != "score" || v2.Outputs[0].Data[0] != want {
		t.Fatalf("V2 REST infer: %d %s, want score %v from version 1", resp.StatusCode, b, want)
	}
	// the same request with amount as binary FP64
	header := strings.Replace(body, `{"name":"amount","datatype":"FP64","shape":[1],"data":[900]}`,
		`{"name":"amount","datatype":"FP64","shape":[1],"parameters":{"binary_data_size":8}}`, 1)
	bin := make([]byte, 8)
	binary.LittleEndian.PutUint64(bin, math.Float64bits(900))
	req, _ := http.NewRequest(http.MethodPost, serving+"/v2/models/"+model+"/infer", bytes.NewReader(append([]byte(header), bin...)))
	req.Header.Set("Inference-Header-Content-Length", fmt.Sprint(len(header)))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || json.Unmarshal(b, &v2) != nil || v2.Outputs[0].Data[0] != want {
		t.Fatalf("V2 REST infer with a binary tensor: %d %s", resp.StatusCode, b)
	}
	for _, c := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"inputs":[{"name":"amount","datatype":"FP64","shape":[2],"data":[1]}]}`, 400, `amount`},
		{`{"inputs":[{"name":"card_id","datatype":"BYTES","shape":[1],"data":["c"]},{"name":"amount","datatype":"BYTES","shape":[1],"data":["x"]}]}`, 400, `amount`},
	} {
		resp, err := http.Post(serving+"/v2/models/"+model+"/infer", "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) || !strings.HasPrefix(string(b), `{"error":`) {
			t.Errorf("V2 %s: %d %s", c.body, resp.StatusCode, b)
		}
	}
	if resp, err := http.Get(serving + "/v2/models/no_such_model"); err != nil || resp.StatusCode != 404 {
		t.Errorf("V2 metadata of an unknown model: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewGRPCInferenceServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := client.ServerReady(ctx, &pb.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Fatalf("gRPC ServerReady: %v %v", r, err)
	}
	str := func(s string) *pb.InferTensorContents {
		return &pb.InferTensorContents{BytesContents: [][]byte{[]byte(s)}}
	}
	out, err := client.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: model, Id: "oip-grpc", Inputs: []*pb.ModelInferRequest_InferInputTensor{
		{Name: "card_id", Datatype: "BYTES", Shape: []int64{1}, Contents: str("c-1")},
		{Name: "amount", Datatype: "FP64", Shape: []int64{1}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{900}}},
		{Name: "merchant_category", Datatype: "BYTES", Shape: []int64{1}, Contents: str("grocery")},
		{Name: "channel", Datatype: "BYTES", Shape: []int64{1}, Contents: str("ecom")},
		{Name: "country", Datatype: "BYTES", Shape: []int64{1}, Contents: str("DE")},
	}})
	if err != nil || out.ModelVersion != "1" || out.Id != "oip-grpc" || len(out.Outputs) == 0 || out.Outputs[0].Contents.GetFp64Contents()[0] != want {
		t.Fatalf("gRPC ModelInfer: %v %v, want score %v", out, err, want)
	}
	if _, err := client.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "no_such_model"}); status.Code(err) != codes.NotFound {
		t.Errorf("gRPC metadata of an unknown model: %v", err)
	}
}

// checkDriftRunsSurviveARestart reads back from the registry what a restarted trainer restores
// its run book from: the drift run of d-1 with d-2 coalesced into it.
func checkDriftRunsSurviveARestart(t *testing.T, registry, modelsDir, model string) {
	t.Helper()
	specs, err := trainer.LoadSpecs(modelsDir, mustViews(t, modelsDir))
	if err != nil {
		t.Fatal(err)
	}
	reg := client.New(registry, "", "e2e", &http.Client{Timeout: 30 * time.Second})
	var past []runs.Past
	waitUntil(t, "the drift run with its coalesced event in the registry", func() bool {
		past, err = trainer.PastDriftRuns(context.Background(), reg, map[string]*modelspec.Spec{model: specs[model]}, time.Now())
		return err == nil && len(past) == 1 && past[0].Trigger.EventID == "d-1" && slices.Contains(past[0].Coalesced, "d-2")
	})
	book := runs.NewBook(map[string]time.Duration{model: time.Duration(specs[model].Cooldown)}, 10, time.Now)
	book.Restore(past)
	for _, id := range []string{"d-1", "d-2"} {
		if d, err := book.Request(model, runs.Trigger{Kind: runs.Drift, EventID: id, At: time.Now()}); err != nil || d.Started {
			t.Fatalf("after a restart, redelivered %s: %+v %v", id, d, err)
		}
	}
}

func mustViews(t *testing.T, modelsDir string) *views.Catalog {
	t.Helper()
	cat, err := features.LoadViews(filepath.Join(filepath.Dir(modelsDir), "views"))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// checkImportedXGBoost registers a model XGBoost 1.7 wrote (a committed fixture) with
// `flywheel models import`, aliases it champion, and serving answers over V2 with the
// probabilities XGBoost predicted for the same rows (a [N, F] matrix with missing values).
func checkImportedXGBoost(t *testing.T, vars map[string]string, serving, registry, name string) {
	t.Helper()
	const fixtures = "../../ml/forest/xgboost/testdata/"
	gz, err := os.ReadFile(fixtures + "binary.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	file := filepath.Join(t.TempDir(), "model.json")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	root := cli.New(&stdout, &stderr, func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	root.SetArgs([]string{"models", "import", name, file, "--format", "xgboost", "--alias", "champion", "--registry-url", registry, "-o", "json"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("models import: %v %s %s", err, stdout.String(), stderr.String())
	}
	inputs, _ := os.ReadFile(fixtures + "binary_input.tsv")
	preds, _ := os.ReadFile(fixtures + "binary_pred.tsv")
	rows := strings.Split(strings.TrimSpace(string(inputs)), "\n")[:20]
	want := strings.Split(strings.TrimSpace(string(preds)), "\n")[:20]
	var data []string
	for _, r := range rows {
		for _, v := range strings.Split(r, "\t") {
			if v == "nan" {
				v = `"NaN"`
			}
			data = append(data, v)
		}
	}
	width := len(strings.Split(rows[0], "\t"))
	body := fmt.Sprintf(`{"inputs":[{"name":"x","datatype":"FP64","shape":[%d,%d],"data":[%s]}]}`, len(rows), width, strings.Join(data, ","))
	var out struct {
		ModelVersion string `json:"model_version"`
		Outputs      []struct {
			Name string    `json:"name"`
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	waitUntil(t, "serving the imported model", func() bool {
		resp, err := http.Post(serving+"/v2/models/"+name+"/infer", "application/json", strings.NewReader(body))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return false
		}
		return json.Unmarshal(b, &out) == nil
	})
	worst := 0.0
	for i, w := range want {
		var x float64
		fmt.Sscan(w, &x)
		worst = math.Max(worst, math.Abs(out.Outputs[0].Data[i]-x))
	}
	if out.ModelVersion != "1" || worst > 1e-6 {
		t.Fatalf("imported XGBoost model over V2: version %s, worst difference from XGBoost's own predictions %g", out.ModelVersion, worst)
	}
	t.Logf("imported XGBoost model: 20 rows with missing values over V2, worst |Δ| from XGBoost %.2g", worst)
}
