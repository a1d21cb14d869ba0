package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/services/registry"
	"github.com/flywheel-ml/flywheel/services/registry/events"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

const (
	writerToken   = "writer-token"
	promoterToken = "promoter-token"
)

type service struct {
	t        *testing.T
	url      string
	prefix   string
	database string
	stop     func()
}

func start(t *testing.T) *service {
	t.Helper()
	testenv.Kafka(t)
	prefix := testenv.Unique(t, "R") + "_"
	ch := testenv.ClickHouseConfig(t)
	s := startWith(t, prefix, ch.Database)
	conn := testenv.NATS(t)
	t.Cleanup(func() {
		buckets, streams := store.Names(prefix)
		for _, b := range buckets {
			_ = conn.JS.DeleteKeyValue(context.Background(), b)
		}
		for _, s := range streams {
			_ = conn.JS.DeleteStream(context.Background(), s)
		}
		_ = conn.JS.DeleteObjectStore(context.Background(), prefix+"ARTIFACTS")
		outbox, position := events.Names(prefix)
		_ = conn.JS.DeleteStream(context.Background(), outbox)
		_ = conn.JS.DeleteKeyValue(context.Background(), position)
	})
	return s
}

// startWith runs a registry on the deployment prefix and ClickHouse database given; it
// stops when the test ends, or when the returned service's stop is called.
func startWith(t *testing.T, prefix, database string) *service {
	t.Helper()
	addr := testenv.FreeAddr(t)
	vars := map[string]string{"FLYWHEEL_REGISTRY_ADDR": addr, "FLYWHEEL_REGISTRY_PREFIX": prefix,
		"FLYWHEEL_CLICKHOUSE_DATABASE": database, "FLYWHEEL_LOG_LEVEL": "warn",
		"FLYWHEEL_AUTH_TOKENS": writerToken + ":read,write;" + promoterToken + ":read,write,promote"}
	var cfg registry.Config
	if err := config.Load(&cfg, nil, func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, exited := make(chan error, 1), make(chan struct{})
	var runErr error
	go func() {
		runErr = registry.Run(ctx, cfg)
		done <- runErr
		close(exited)
	}()
	var once sync.Once
	s := &service{t: t, url: "http://" + addr, prefix: prefix, database: database}
	s.stop = func() {
		once.Do(func() {
			cancel()
			<-exited
			if runErr != nil {
				t.Errorf("registry stopped with %v", runErr)
			}
		})
	}
	t.Cleanup(s.stop)
	testenv.WaitReady(t, s.url, done)
	return s
}

// call sends an MLflow request (query parameters for GET, JSON body otherwise) and decodes
// the answer; it returns the status.
func (s *service) call(token, method, path string, req any, resp any) int {
	s.t.Helper()
	target := s.url + path
	var body io.Reader
	if method == http.MethodGet && req != nil {
		q := url.Values{}
		for k, v := range req.(map[string]string) {
			q.Set(k, v)
		}
		target += "?" + q.Encode()
	} else if req != nil {
		b, _ := json.Marshal(req)
		body = bytes.NewReader(b)
	}
	r, _ := http.NewRequest(method, target, body)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if resp != nil {
		if err := json.Unmarshal(data, resp); err != nil {
			s.t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, data, err)
		}
	}
	return res.StatusCode
}

// ok is call that must answer 200.
func (s *service) ok(method, path string, req any, resp any) {
	s.t.Helper()
	var raw json.RawMessage
	if code := s.call(promoterToken, method, path, req, &raw); code != http.StatusOK {
		s.t.Fatalf("%s %s: %d %s", method, path, code, raw)
	}
	if resp != nil {
		if err := json.Unmarshal(raw, resp); err != nil {
			s.t.Fatal(err)
		}
	}
}

type mlflowErr struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

func (s *service) fails(token, method, path string, req any, status int, code string) mlflowErr {
	s.t.Helper()
	var e mlflowErr
	if got := s.call(token, method, path, req, &e); got != status || e.ErrorCode != code {
		s.t.Fatalf("%s %s: want %d %s, got %d %+v", method, path, status, code, got, e)
	}
	return e
}

const api = "/api/2.0/mlflow/"

// The MLflow session of the issue, over plain HTTP: every answer MLflow-shaped.
func TestMLflowSession(t *testing.T) {
	s := start(t)
	conn := testenv.NATS(t)
	events := make(chan *nats.Msg, 100)
	sub, err := conn.NC.ChanSubscribe(s.prefix+"registry.events.>", events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	var created struct {
		ExperimentID string `json:"experiment_id"`
	}
	s.ok("POST", api+"experiments/create", map[string]any{"name": "fraud-detection", "tags": []map[string]string{{"key": "team", "value": "risk"}}}, &created)
	s.fails(promoterToken, "POST", api+"experiments/create", map[string]any{"name": "fraud-detection"}, 400, "RESOURCE_ALREADY_EXISTS")
	s.fails("", "POST", api+"experiments/create", map[string]any{"name": "x"}, 401, "UNAUTHENTICATED")
	var exp struct {
		Experiment map[string]any `json:"experiment"`
	}
	s.ok("GET", api+"experiments/get-by-name", map[string]string{"experiment_name": "fraud-detection"}, &exp)
	golden(t, "experiment", exp)

	type runResp struct {
		Run struct {
			Info struct {
				RunID       string `json:"run_id"`
				Status      string `json:"status"`
				ArtifactURI string `json:"artifact_uri"`
			} `json:"info"`
		} `json:"run"`
	}
	var runIDs []string
	for i, auc := range []float64{0.91, 0.72, 0.88} {
		var run runResp
		s.ok("POST", api+"runs/create", map[string]any{"experiment_id": created.ExperimentID, "run_name": fmt.Sprintf("gbt-%d", i),
			"start_time": 1700000000000 + i, "tags": []map[string]string{{"key": "mlflow.user", "value": "ana"}}}, &run)
		id := run.Run.Info.RunID
		if run.Run.Info.Status != "RUNNING" || run.Run.Info.ArtifactURI != "mlflow-artifacts:/"+created.ExperimentID+"/"+id+"/artifacts" {
			t.Fatalf("new run: %+v", run)
		}
		runIDs = append(runIDs, id)
		for step := range 5 {
			s.ok("POST", api+"runs/log-batch", map[string]any{"run_id": id,
				"metrics": []map[string]any{{"key": "auc", "value": auc - 0.1 + float64(step)*0.025, "timestamp": 1700000001000 + step, "step": step},
					{"key": "loss", "value": 1.0 / float64(step+1), "timestamp": 1700000001000 + step, "step": step}},
				"params": []map[string]string{{"key": "lr", "value": []string{"0.1", "0.3", "0.1"}[i]}, {"key": "depth", "value": "6"}}}, nil)
		}
		s.ok("POST", api+"runs/update", map[string]any{"run_id": id, "status": "FINISHED", "end_time": 1700000009000}, nil)
	}
	e := s.fails(promoterToken, "POST", api+"runs/log-parameter", map[string]string{"run_id": runIDs[0], "key": "lr", "value": "0.5"}, 400, "INVALID_PARAMETER_VALUE")
	if !strings.Contains(e.Message, "lr") {
		t.Fatalf("the param error names no key: %s", e.Message)
	}
	tooMany := make([]map[string]string, 101)
	for i := range tooMany {
		tooMany[i] = map[string]string{"key": fmt.Sprintf("p%d", i), "value": "v"}
	}
	s.fails(promoterToken, "POST", api+"runs/log-batch", map[string]any{"run_id": runIDs[0], "params": tooMany}, 400, "INVALID_PARAMETER_VALUE")
	s.fails(promoterToken, "GET", api+"runs/get", map[string]string{"run_id": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST")

	var run map[string]any
	s.ok("GET", api+"runs/get", map[string]string{"run_id": runIDs[0]}, &run)
	golden(t, "run", run)

	var found struct {
		Runs []struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"runs"`
		NextPageToken string `json:"next_page_token"`
	}
	s.ok("POST", api+"runs/search", map[string]any{"experiment_ids": []string{created.ExperimentID},
		"filter": "metrics.auc > 0.8 and params.lr = '0.1'", "order_by": []string{"metrics.auc DESC"}}, &found)
	if len(found.Runs) != 2 || found.Runs[0].Info.RunID != runIDs[0] || found.Runs[1].Info.RunID != runIDs[2] {
		t.Fatalf("search: want runs 0 and 2 by auc, got %+v (ids %v)", found, runIDs)
	}
	found.Runs, found.NextPageToken = nil, ""
	s.ok("POST", api+"runs/search", map[string]any{"experiment_ids": []string{created.ExperimentID}, "max_results": 2}, &found)
	if len(found.Runs) != 2 || found.NextPageToken == "" {
		t.Fatalf("first page: %+v", found)
	}
	token := found.NextPageToken
	found.Runs, found.NextPageToken = nil, ""
	s.ok("POST", api+"runs/search", map[string]any{"experiment_ids": []string{created.ExperimentID}, "max_results": 2, "page_token": token}, &found)
	if len(found.Runs) != 1 || found.NextPageToken != "" {
		t.Fatalf("second page: %+v", found)
	}
	s.fails(promoterToken, "POST", api+"runs/search", map[string]any{"filter": "metrics.auc >> 1"}, 400, "INVALID_PARAMETER_VALUE")

	var history map[string]any
	s.ok("GET", api+"metrics/get-history", map[string]string{"run_id": runIDs[0], "metric_key": "auc"}, &history)
	golden(t, "metric-history", history)

	// Artifacts through the proxy paths.
	artifact := api[:len(api)-len("mlflow/")] + "mlflow-artifacts/artifacts/" + created.ExperimentID + "/" + runIDs[0] + "/artifacts/model/model.json"
	put, _ := http.NewRequest("PUT", s.url+artifact, strings.NewReader(`{"trees":100}`))
	put.Header.Set("Authorization", "Bearer "+writerToken)
	if res, err := http.DefaultClient.Do(put); err != nil || res.StatusCode != 200 {
		t.Fatalf("artifact upload: %v %v", res, err)
	}
	getReq, _ := http.NewRequest("GET", s.url+artifact, nil)
	getReq.Header.Set("Authorization", "Bearer "+writerToken)
	if res, err := http.DefaultClient.Do(getReq); err != nil || res.StatusCode != 200 {
		t.Fatalf("artifact download: %v %v", res, err)
	} else if b, _ := io.ReadAll(res.Body); string(b) != `{"trees":100}` {
		t.Fatalf("artifact bytes: %s", b)
	}

	// Register a model version from the run and make it champion.
	s.ok("POST", api+"registered-models/create", map[string]any{"name": "fraud", "description": "card fraud"}, nil)
	var mv struct {
		ModelVersion map[string]any `json:"model_version"`
	}
	s.ok("POST", api+"model-versions/create", map[string]any{"name": "fraud", "source": "runs:/" + runIDs[0] + "/model", "run_id": runIDs[0]}, &mv)
	if mv.ModelVersion["version"] != "1" {
		t.Fatalf("first version: %+v", mv)
	}
	s.fails(writerToken, "POST", api+"registered-models/alias", map[string]string{"name": "fraud", "alias": "champion", "version": "1"}, 403, "PERMISSION_DENIED")
	s.call(writerToken, "POST", api+"registered-models/alias", map[string]string{"name": "fraud", "alias": "challenger", "version": "1"}, nil)
	s.ok("POST", api+"registered-models/alias", map[string]string{"name": "fraud", "alias": "champion", "version": "1"}, nil)
	s.ok("GET", api+"registered-models/alias", map[string]string{"name": "fraud", "alias": "champion"}, &mv)
	golden(t, "model-version-by-alias", mv)
	var model map[string]any
	s.ok("GET", api+"registered-models/get", map[string]string{"name": "fraud"}, &model)
	golden(t, "registered-model", model)
	var versions map[string]any
	s.ok("GET", api+"model-versions/search", map[string]string{"filter": "name='fraud'"}, &versions)
	golden(t, "model-versions-search", versions)

	want := map[string]bool{"experiment_created": false, "run_created": false, "model_created": false, "version_created": false, "alias_moved": false}
	deadline := time.After(5 * time.Second)
	for remaining := len(want); remaining > 0; {
		select {
		case m := <-events:
			typ := strings.TrimPrefix(m.Subject, s.prefix+"registry.events.")
			if seen, ok := want[typ]; ok && !seen {
				want[typ] = true
				remaining--
			}
		case <-deadline:
			t.Fatalf("registry events on NATS: %v", want)
		}
	}
}

var (
	volatile = regexp.MustCompile(`"(run_id|run_uuid|experiment_id|start_time|end_time|creation_time|last_update_time|creation_timestamp|last_updated_timestamp|timestamp)": ("[^"]*"|[0-9]+)`)
	uriIDs   = regexp.MustCompile(`mlflow-artifacts:/[0-9]+/[0-9a-f]{32}`)
	runsURI  = regexp.MustCompile(`runs:/[0-9a-f]{32}`)
)

// golden compares an answer with testdata/mlflow/<name>.json after masking ids and times;
// the files follow the examples of MLflow's REST API documentation. UPDATE_GOLDEN=1 rewrites.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, _ := json.MarshalIndent(v, "", "  ")
	got = volatile.ReplaceAll(got, []byte(`"$1": "<$1>"`))
	got = uriIDs.ReplaceAll(got, []byte(`mlflow-artifacts:/<experiment>/<run>`))
	got = runsURI.ReplaceAll(got, []byte(`runs:/<run>`))
	path := filepath.Join("testdata", "mlflow", name+".json")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		_ = os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden %s: %v (UPDATE_GOLDEN=1 writes it)", name, err)
	}
	if string(bytes.TrimSpace(want)) != string(bytes.TrimSpace(got)) {
		t.Fatalf("%s differs from %s:\n%s", name, path, got)
	}
}
