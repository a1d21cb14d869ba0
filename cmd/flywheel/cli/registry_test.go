package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/cli"
)

// exchange is one request the fake registry expects, in order, and its canned answer.
type exchange struct {
	method   string
	path     string     // escaped path
	query    url.Values // nil: no query
	rawQuery string     // when set, the exact encoded query
	body     string     // JSON compared by value; "": no body
	auth     string     // the Authorization header
	status   int        // 0: 200
	reply    string
}

// fakeRegistry serves exchanges in order, failing the test on any other request and on
// exchanges left unserved.
func fakeRegistry(t *testing.T, exchanges ...exchange) string {
	t.Helper()
	var mu sync.Mutex
	served := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if served == len(exchanges) {
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusTeapot)
			return
		}
		want := exchanges[served]
		served++
		if r.Method != want.method || r.URL.EscapedPath() != want.path {
			t.Errorf("request %d: got %s %s, want %s %s", served, r.Method, r.URL.EscapedPath(), want.method, want.path)
		}
		wantQuery := want.query
		if wantQuery == nil {
			wantQuery = url.Values{}
		}
		if got := r.URL.Query(); !reflect.DeepEqual(got, wantQuery) {
			t.Errorf("request %d (%s): query %v, want %v", served, want.path, got, wantQuery)
		}
		if want.rawQuery != "" && r.URL.RawQuery != want.rawQuery {
			t.Errorf("request %d (%s): raw query %q, want %q", served, want.path, r.URL.RawQuery, want.rawQuery)
		}
		if got := r.Header.Get("Authorization"); got != want.auth {
			t.Errorf("request %d (%s): Authorization %q, want %q", served, want.path, got, want.auth)
		}
		body, _ := io.ReadAll(r.Body)
		switch {
		case want.body == "" && len(body) > 0:
			t.Errorf("request %d (%s): unexpected body %s", served, want.path, body)
		case want.body != "":
			var got, exp any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Errorf("request %d (%s): body %q is not JSON: %v", served, want.path, body, err)
			}
			if err := json.Unmarshal([]byte(want.body), &exp); err != nil {
				t.Fatalf("bad test body %q: %v", want.body, err)
			}
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("request %d (%s): body %s, want %s", served, want.path, body, want.body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("request %d (%s): Content-Type %q", served, want.path, ct)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(max(want.status, http.StatusOK))
		_, _ = io.WriteString(w, want.reply)
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		if served != len(exchanges) {
			t.Errorf("the registry served %d of %d expected requests", served, len(exchanges))
		}
	})
	return srv.URL
}

// runCLI executes flywheel with args and env (read through the lookup function only).
func runCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := cli.New(&out, &errOut, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func registryEnv(url string) map[string]string {
	return map[string]string{"FLYWHEEL_REGISTRY_URL": url, "FLYWHEEL_TOKEN": "env-token"}
}

const (
	runA = `{"info":{"run_id":"aaa","run_name":"brave-owl","experiment_id":"3","user_id":"ana","status":"FINISHED",
		"start_time":1700000000000,"end_time":1700000060000,"artifact_uri":"s3://runs/aaa","lifecycle_stage":"active"},
		"data":{"metrics":[{"key":"auc","value":0.93456,"timestamp":1700000050000,"step":3},
		                   {"key":"auc","value":0.9,"timestamp":1700000040000,"step":2},
		                   {"key":"loss","value":0.12,"timestamp":1700000050000,"step":3}],
		        "params":[{"key":"max_depth","value":"6"},{"key":"lr","value":"0.1"}],
		        "tags":[{"key":"mlflow.user","value":"ana"}]},
		"inputs":{"dataset_inputs":[{"tags":[{"key":"mlflow.data.context","value":"training"}],
		        "dataset":{"name":"transactions","digest":"d1g","source_type":"clickhouse","source":"features.card_activity"}}]}}`
	runB = `{"info":{"run_id":"bbb","experiment_id":"3","status":"RUNNING","start_time":"1700000100000","lifecycle_stage":"active"},
		"data":{"metrics":[{"key":"auc","value":"NaN","timestamp":1700000100000,"step":0}],"tags":[{"key":"mlflow.runName","value":"calm-fox"}]}}`
	runC = `{"info":{"run_id":"ccc","run_name":"old-elk","experiment_id":"3","status":"FAILED","start_time":1690000000000},"data":{}}`
)

func TestRunsListResolvesNameAndPages(t *testing.T) {
	t.Parallel()
	base := fakeRegistry(t,
		exchange{method: "GET", path: "/api/2.0/mlflow/experiments/get-by-name", auth: "Bearer env-token",
			query: url.Values{"experiment_name": {"fraud detection"}},
			reply: `{"experiment":{"experiment_id":"3","name":"fraud detection"}}`},
		exchange{method: "POST", path: "/api/2.0/mlflow/runs/search", auth: "Bearer env-token",
			body: `{"experiment_ids":["3"],"filter":"metrics.auc > 0.9","order_by":["metrics.auc DESC","start_time ASC"],
				"max_results":3,"run_view_type":"ACTIVE_ONLY"}`,
			reply: `{"runs":[` + runA + `,` + runB + `],"next_page_token":"page-2"}`},
		exchange{method: "POST", path: "/api/2.0/mlflow/runs/search", auth: "Bearer env-token",
			body: `{"experiment_ids":["3"],"filter":"metrics.auc > 0.9","order_by":["metrics.auc DESC","start_time ASC"],
				"max_results":1,"run_view_type":"ACTIVE_ONLY","page_token":"page-2"}`,
			reply: `{"runs":[` + runC + `],"next_page_token":"page-3"}`},
	)
	out, err := runCLI(t, registryEnv(base), "runs", "list", "--experiment", "fraud detection",
		"--filter", "metrics.auc > 0.9", "--order-by", "metrics.auc DESC", "--order-by", "start_time ASC", "--max", "3")
	if err != nil {
		t.Fatal(err)
	}
	want := `RUN ID  NAME       STATUS    START                 METRICS
aaa     brave-owl  FINISHED  2023-11-14T22:13:20Z  auc=0.9346 loss=0.12
bbb     calm-fox   RUNNING   2023-11-14T22:15:00Z  auc=NaN
ccc     old-elk    FAILED    2023-07-22T04:26:40Z  -
`
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestRunsListNumericExperimentFallsBackToName(t *testing.T) {
	t.Parallel()
	base := fakeRegistry(t,
		exchange{method: "GET", path: "/api/2.0/mlflow/experiments/get", auth: "Bearer flag-token",
			query:  url.Values{"experiment_id": {"2024"}},
			status: http.StatusNotFound,
			reply:  `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"No Experiment with id=2024 exists"}`},
		exchange{method: "GET", path: "/api/2.0/mlflow/experiments/get-by-name", auth: "Bearer flag-token",
			query: url.Values{"experiment_name": {"2024"}},
			reply: `{"experiment":{"experiment_id":"7","name":"2024"}}`},
		exchange{method: "POST", path: "/api/2.0/mlflow/runs/search", auth: "Bearer flag-token",
			body:  `{"experiment_ids":["7"],"max_results":50,"run_view_type":"ACTIVE_ONLY"}`,
			reply: `{"runs":[` + runC + `]}`},
	)
	// Flags win over the environment, whose URL points nowhere.
	env := map[string]string{"FLYWHEEL_REGISTRY_URL": "http://127.0.0.1:1", "FLYWHEEL_TOKEN": "env-token"}
	out, err := runCLI(t, env, "runs", "list", "-e", "2024", "--registry-url", base+"/", "--token", "flag-token", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var runs []struct {
		Info struct {
			RunID string `json:"run_id"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != 1 || runs[0].Info.RunID != "ccc" {
		t.Fatalf("want a JSON array holding run ccc, got %v:\n%s", err, out)
	}
	if !strings.HasPrefix(out, "[\n  {\n    \"info\": {") {
		t.Errorf("want indented JSON, got:\n%s", out)
	}
}

func TestRunsListDefaultExperimentByID(t *testing.T) {
	t.Parallel()
	base := fakeRegistry(t,
		exchange{method: "GET", path: "/api/2.0/mlflow/experiments/get", query: url.Values{"experiment_id": {"0"}},
			reply: `{"experiment":{"experiment_id":"0","name":"Default"}}`},
		exchange{method: "POST", path: "/api/2.0/mlflow/runs/search",
			body:  `{"experiment_ids":["0"],"max_results":50,"run_view_type":"ACTIVE_ONLY"}`,
			reply: `{}`},
	)
	out, err := runCLI(t, map[string]string{"FLYWHEEL_REGISTRY_URL": base}, "runs", "list")
	if err != nil || out != "no runs in experiment 0\n" {
		t.Fatalf("got %v:\n%s", err, out)
	}
}

func TestRunsShow(t *testing.T) {
	t.Parallel()
	exch := exchange{method: "GET", path: "/api/2.0/mlflow/runs/get", auth: "Bearer env-token",
		query: url.Values{"run_id": {"aaa"}}, reply: `{"run":` + runA + `}`}
	base := fakeRegistry(t, exch, exch)
	out, err := runCLI(t, registryEnv(base), "runs", "show", "aaa")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Run ID:      aaa\n",
		"Status:      FINISHED\n",
		"End:         2023-11-14T22:14:20Z (1m0s)\n",
		"Params:\n  KEY        VALUE\n  lr         0.1\n  max_depth  6\n",
		"Metrics (latest):\n  KEY   VALUE    STEP  TIME\n  auc   0.93456  3     2023-11-14T22:14:10Z\n  loss  0.12     3     2023-11-14T22:14:10Z\n",
		"Tags:\n  KEY          VALUE\n  mlflow.user  ana\n",
		"Dataset inputs:\n  NAME          DIGEST  SOURCE TYPE  SOURCE                  CONTEXT\n  transactions  d1g     clickhouse   features.card_activity  training\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out, err = runCLI(t, registryEnv(base), "runs", "show", "aaa", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var run map[string]any
	if err := json.Unmarshal([]byte(out), &run); err != nil || run["info"] == nil || run["inputs"] == nil {
		t.Fatalf("want the run object, got %v:\n%s", err, out)
	}
}

func TestRegistryErrorShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		exch    exchange
		want    string
		code    string
		wantErr string
	}{
		{
			name: "mlflow shape",
			args: []string{"runs", "show", "nope"},
			exch: exchange{method: "GET", path: "/api/2.0/mlflow/runs/get", query: url.Values{"run_id": {"nope"}},
				auth: "Bearer env-token", status: http.StatusNotFound,
				reply: `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Run 'nope' not found"}`},
			wantErr: "registry: 404 RESOURCE_DOES_NOT_EXIST: Run 'nope' not found",
			code:    "RESOURCE_DOES_NOT_EXIST",
		},
		{
			name: "v1 shape",
			args: []string{"models", "history", "x"},
			exch: exchange{method: "GET", path: "/v1/models/x/aliases/history", auth: "Bearer env-token",
				status: http.StatusNotFound,
				reply:  `{"error":{"code":"RESOURCE_DOES_NOT_EXIST","message":"Registered model 'x' not found"}}`},
			wantErr: "registry: 404 RESOURCE_DOES_NOT_EXIST: Registered model 'x' not found",
			code:    "RESOURCE_DOES_NOT_EXIST",
		},
		{
			name: "not JSON",
			args: []string{"models", "versions", "x"},
			exch: exchange{method: "GET", path: "/api/2.0/mlflow/model-versions/search", auth: "Bearer env-token",
				query:  url.Values{"filter": {"name='x'"}, "max_results": {"200"}},
				status: http.StatusBadGateway, reply: "<html>\n<h1>bad gateway</h1></html>"},
			wantErr: "registry: 502 Bad Gateway: <html> <h1>bad gateway</h1></html>",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := fakeRegistry(t, tt.exch)
			_, err := runCLI(t, registryEnv(base), tt.args...)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("got error %v, want %s", err, tt.wantErr)
			}
			var re *cli.APIError
			if !errors.As(err, &re) || re.Status != tt.exch.status || re.Code != tt.code {
				t.Errorf("want a *cli.APIError with status %d and code %q, got %#v", tt.exch.status, tt.code, re)
			}
		})
	}
}

func TestModelsPromote(t *testing.T) {
	t.Parallel()
	move := `{"move":{"model":"fraud","alias":"champion","version":3,"previous":2,"actor":"ana",
		"reason":"better auc","at":"2025-03-01T10:00:00Z","revision":17}}`
	base := fakeRegistry(t,
		exchange{method: "POST", path: "/v1/models/fraud/aliases/champion", auth: "Bearer env-token",
			body: `{"version":3,"reason":"better auc"}`, reply: move},
		exchange{method: "POST", path: "/v1/models/fraud/aliases/champion", auth: "Bearer env-token",
			body: `{"version":3}`, reply: move},
	)
	out, err := runCLI(t, registryEnv(base), "models", "promote", "fraud", "3", "--reason", "better auc")
	if err != nil || out != "fraud: champion 2 → 3 (revision 17)\n" {
		t.Fatalf("got %v: %q", err, out)
	}
	out, err = runCLI(t, registryEnv(base), "models", "promote", "fraud", "3", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Revision int    `json:"revision"`
		At       string `json:"at"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.Revision != 17 || m.At != "2025-03-01T10:00:00Z" {
		t.Fatalf("want the move object, got %v:\n%s", err, out)
	}
}

func TestModelsPromoteForbidden(t *testing.T) {
	t.Parallel()
	base := fakeRegistry(t,
		exchange{method: "POST", path: "/v1/models/fraud/aliases/champion", auth: "Bearer reader",
			body: `{"version":4}`, status: http.StatusForbidden,
			reply: `{"error":{"code":"forbidden","message":"the token lacks the promote scope"}}`},
	)
	_, err := runCLI(t, registryEnv(base), "models", "promote", "fraud", "4", "--token", "reader")
	want := "registry: 403 forbidden: the token lacks the promote scope (moving champion needs a token with the promote scope)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	var re *cli.APIError
	if !errors.As(err, &re) || re.Status != http.StatusForbidden {
		t.Errorf("the 403 must stay a *cli.APIError, got %#v", err)
	}
}

func TestModelsUnauthenticatedWithoutToken(t *testing.T) {
	t.Parallel()
	base := fakeRegistry(t,
		exchange{method: "POST", path: "/v1/models/fraud/aliases/champion/rollback", body: `{}`,
			status: http.StatusUnauthorized,
			reply:  `{"error":{"code":"unauthenticated","message":"a bearer token is required"}}`},
	)
	_, err := runCLI(t, map[string]string{"FLYWHEEL_REGISTRY_URL": base}, "models", "rollback", "fraud")
	want := "registry: 401 unauthenticated: a bearer token is required (no token: pass --token or set FLYWHEEL_TOKEN)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestModelsRollbackEscapesPath(t *testing.T) {
	t.Parallel()
	base := fakeRegistry(t,
		exchange{method: "POST", path: "/v1/models/fraud%2Feu/aliases/shadow%20a/rollback", auth: "Bearer env-token",
			body: `{"reason":"latency regression"}`,
			reply: `{"move":{"model":"fraud/eu","alias":"shadow a","version":2,"previous":3,"actor":"ops",
				"at":"2025-03-01T10:00:00Z","revision":9}}`},
	)
	out, err := runCLI(t, registryEnv(base), "models", "rollback", "fraud/eu", "--alias", "shadow a", "--reason", "latency regression")
	if err != nil || out != "fraud/eu: shadow a 3 → 2 (revision 9)\n" {
		t.Fatalf("got %v: %q", err, out)
	}
}

func TestModelsList(t *testing.T) {
	t.Parallel()
	base := fakeRegistry(t,
		exchange{method: "GET", path: "/api/2.0/mlflow/registered-models/search", auth: "Bearer env-token",
			query: url.Values{"max_results": {"100"}, "filter": {"name LIKE 'fraud%'"}},
			reply: `{"registered_models":[{"name":"fraud","creation_timestamp":1700000000000,"last_updated_timestamp":1700000600000,
				"aliases":[{"alias":"shadow","version":"4"},{"alias":"champion","version":"3"}]}],"next_page_token":"t2"}`},
		exchange{method: "GET", path: "/api/2.0/mlflow/registered-models/search", auth: "Bearer env-token",
			query: url.Values{"max_results": {"99"}, "filter": {"name LIKE 'fraud%'"}, "page_token": {"t2"}},
			reply: `{"registered_models":[{"name":"fraud-eu","last_updated_timestamp":1700000000000}]}`},
	)
	out, err := runCLI(t, registryEnv(base), "models", "list", "--filter", "name LIKE 'fraud%'")
	if err != nil {
		t.Fatal(err)
	}
	want := `NAME      ALIASES              UPDATED
fraud     champion=3,shadow=4  2023-11-14T22:23:20Z
fraud-eu  -                    2023-11-14T22:13:20Z
`
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestModelsVersionsSortedNewestFirst(t *testing.T) {
	t.Parallel()
	page1 := `{"model_versions":[
		{"name":"fraud","version":"2","creation_timestamp":1700000000000,"run_id":"bbb","source":"s3://m/2","status":"READY","aliases":[]},
		{"name":"fraud","version":"10","creation_timestamp":1700000600000,"run_id":"ccc","source":"s3://m/10","status":"READY","aliases":["shadow","champion"],
		 "tags":[{"key":"flywheel.trigger","value":"drift:d-1"}]}],
		"next_page_token":"n2"}`
	page2 := `{"model_versions":[
		{"name":"fraud","version":"1","creation_timestamp":1690000000000,"run_id":"aaa","source":"s3://m/1","status":"READY"}]}`
	exchanges := []exchange{
		{method: "GET", path: "/api/2.0/mlflow/model-versions/search", auth: "Bearer env-token",
			query:    url.Values{"filter": {"name='fraud'"}, "max_results": {"200"}},
			rawQuery: "filter=name%3D%27fraud%27&max_results=200", reply: page1},
		{method: "GET", path: "/api/2.0/mlflow/model-versions/search", auth: "Bearer env-token",
			query: url.Values{"filter": {"name='fraud'"}, "max_results": {"200"}, "page_token": {"n2"}}, reply: page2},
	}
	base := fakeRegistry(t, append(exchanges, exchanges...)...)
	out, err := runCLI(t, registryEnv(base), "models", "versions", "fraud")
	if err != nil {
		t.Fatal(err)
	}
	want := `VERSION  ALIASES          RUN ID  CREATED               TRIGGER    SOURCE
10       champion,shadow  ccc     2023-11-14T22:23:20Z  drift:d-1  s3://m/10
2        -                bbb     2023-11-14T22:13:20Z  -          s3://m/2
1        -                aaa     2023-07-22T04:26:40Z  -          s3://m/1
`
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}

	out, err = runCLI(t, registryEnv(base), "models", "versions", "fraud", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var versions []struct{ Version string }
	if err := json.Unmarshal([]byte(out), &versions); err != nil || len(versions) != 3 ||
		versions[0].Version != "10" || versions[2].Version != "1" {
		t.Fatalf("want the three versions newest first, got %v:\n%s", err, out)
	}
}

func TestModelsHistoryFiltersByAlias(t *testing.T) {
	t.Parallel()
	history := exchange{method: "GET", path: "/v1/models/fraud/aliases/history", auth: "Bearer env-token",
		reply: `{"moves":[
		{"model":"fraud","alias":"champion","version":2,"actor":"ana","reason":"first","at":"2025-03-01T09:00:00Z","revision":1},
		{"model":"fraud","alias":"shadow","version":4,"actor":"bot","at":"2025-03-01T09:30:00Z","revision":2},
		{"model":"fraud","alias":"champion","version":3,"previous":2,"actor":"ana","reason":"better\tauc","at":"2025-03-01T10:00:00Z","revision":3}]}`}
	base := fakeRegistry(t, history)
	out, err := runCLI(t, registryEnv(base), "models", "history", "fraud", "--alias", "champion")
	if err != nil {
		t.Fatal(err)
	}
	want := `AT                    EVENT  ALIAS     FROM  TO  BY   REASON / TRIGGER
2025-03-01T09:00:00Z  alias  champion  -     2   ana  first
2025-03-01T10:00:00Z  alias  champion  2     3   ana  better auc
`
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

// Without --alias the history is the model's timeline: versions as they were created, with
// their trigger, between the alias moves, oldest first.
func TestModelsHistoryTimeline(t *testing.T) {
	t.Parallel()
	history := exchange{method: "GET", path: "/v1/models/fraud/aliases/history", auth: "Bearer env-token",
		reply: `{"moves":[
		{"model":"fraud","alias":"champion","version":1,"actor":"trainer","reason":"gates passed","at":"2025-03-01T09:00:00Z","revision":1},
		{"model":"fraud","alias":"champion","version":2,"previous":1,"actor":"trainer","reason":"gates passed","at":"2025-03-02T09:00:05Z","revision":2},
		{"model":"fraud","alias":"champion","version":1,"previous":2,"actor":"ana","reason":"rollback: precision","at":"2025-03-02T10:00:00Z","revision":3}]}`}
	versions := exchange{method: "GET", path: "/api/2.0/mlflow/model-versions/search", auth: "Bearer env-token",
		query: url.Values{"filter": {"name='fraud'"}, "max_results": {"200"}},
		reply: `{"model_versions":[
		{"name":"fraud","version":"2","creation_timestamp":1740906000000,"run_id":"r2","tags":[{"key":"flywheel.trigger","value":"drift:d-7"},{"key":"flywheel.dataset_version","value":"ds-2"}]},
		{"name":"fraud","version":"1","creation_timestamp":1740819600000,"run_id":"r1","tags":[{"key":"flywheel.trigger","value":"request"}]}]}`}
	base := fakeRegistry(t, history, versions, history, versions)
	out, err := runCLI(t, registryEnv(base), "models", "history", "fraud")
	if err != nil {
		t.Fatal(err)
	}
	want := `AT                    EVENT    ALIAS     FROM  TO  BY       REASON / TRIGGER
2025-03-01T09:00:00Z  version  -         -     1   run r1   request
2025-03-01T09:00:00Z  alias    champion  -     1   trainer  gates passed
2025-03-02T09:00:00Z  version  -         -     2   run r2   drift:d-7 dataset ds-2
2025-03-02T09:00:05Z  alias    champion  1     2   trainer  gates passed
2025-03-02T10:00:00Z  alias    champion  2     1   ana      rollback: precision
`
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	out, err = runCLI(t, registryEnv(base), "models", "history", "fraud", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		Event    string `json:"event"`
		Version  int    `json:"version"`
		Previous int    `json:"previous"`
		Trigger  string `json:"trigger"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 5 ||
		entries[2].Event != "version_created" || entries[2].Trigger != "drift:d-7" ||
		entries[4].Event != "alias_moved" || entries[4].Version != 1 || entries[4].Previous != 2 {
		t.Fatalf("want the five timeline entries, got %v:\n%s", err, out)
	}
}

func TestRegistryFlagValidation(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"models", "list", "-o", "yaml"},
		{"models", "promote", "fraud", "three"},
		{"runs", "list", "--max", "0"},
		{"runs", "list", "--registry-url", "127.0.0.1:8083"},
	} {
		// No server: each must fail before any request.
		if _, err := runCLI(t, map[string]string{"FLYWHEEL_REGISTRY_URL": "http://127.0.0.1:1"}, args...); err == nil {
			t.Errorf("%v: want an error", args)
		}
	}
}
