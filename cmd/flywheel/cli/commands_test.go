package cli_test

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/cli"
)

// fakeService answers each "METHOD /path" with its canned JSON (or, for a value starting with
// "ndjson:", NDJSON), 404 otherwise; it records the requests' bodies and content types.
type fakeService struct {
	*httptest.Server
	bodies       map[string][]string
	contentTypes map[string]string
}

func newFakeService(t *testing.T, routes map[string]string) *fakeService {
	t.Helper()
	f := &fakeService{bodies: map[string][]string{}, contentTypes: map[string]string{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.Path
		body, _ := io.ReadAll(r.Body)
		f.bodies[key] = append(f.bodies[key], string(body))
		f.contentTypes[key] = r.Header.Get("Content-Type")
		reply, ok := routes[key]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"code":"not_found","message":"no route `+key+`"}}`)
			return
		}
		if rest, nd := strings.CutPrefix(reply, "ndjson:"); nd {
			w.Header().Set("Content-Type", "application/x-ndjson")
			_, _ = io.WriteString(w, rest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, reply)
	}))
	t.Cleanup(f.Close)
	return f
}

// closedURL is a base URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

// Every service a command calls, when nothing answers, is named with the URL tried and how
// to start it — by the one client every command shares.
func TestUnreachableServiceNamesItsURLAndHowToStartIt(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		service string
		args    []string
	}{
		{"ingest", []string{"streams", "list"}},
		{"ingest", []string{"streams", "produce", "transactions", "-f", "testdata/payments.ndjson"}},
		{"features", []string{"features", "get", "card_activity", "card_id=c-1"}},
		{"features", []string{"features", "historical", "--view", "card_activity", "--row", `{"card_id":"c-1","event_timestamp":"2026-11-22T10:00:00Z"}`}},
		{"features", []string{"features", "backfill"}},
		{"registry", []string{"models", "list"}},
		{"registry", []string{"runs", "show", "r1"}},
		{"serving", []string{"predict", "fraud", "-i", `{"card_id":"c-1"}`}},
		{"monitor", []string{"drift", "status", "fraud"}},
		{"trainer", []string{"train", "fraud"}},
		{"trainer", []string{"models", "validate", "fraud", "--candidate", "2"}},
	} {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			t.Parallel()
			base := closedURL(t)
			env := map[string]string{"FLYWHEEL_" + strings.ToUpper(tt.service) + "_URL": base}
			_, err := runCLI(t, env, tt.args...)
			var ue *cli.UnreachableError
			if !errors.As(err, &ue) || ue.Service != tt.service || ue.URL != base {
				t.Fatalf("want an UnreachableError for %s at %s, got %v", tt.service, base, err)
			}
			for _, want := range []string{tt.service + " at " + base + " is unreachable", "`make up`", "`flywheel up --detach`",
				"--" + tt.service + "-url", "FLYWHEEL_" + strings.ToUpper(tt.service) + "_URL", "connection refused"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
		})
	}
}

// The address `flywheel up` listens on (FLYWHEEL_<SERVICE>_ADDR) is where the CLI looks when
// no URL is given, so one environment serves both.
func TestServiceURLFallsBackToTheListenAddress(t *testing.T) {
	t.Parallel()
	svc := newFakeService(t, map[string]string{"GET /v1/streams": `{"streams":[]}`})
	addr := strings.TrimPrefix(svc.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)
	if _, err := runCLI(t, map[string]string{"FLYWHEEL_INGEST_ADDR": "0.0.0.0:" + port}, "streams", "list"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, map[string]string{"FLYWHEEL_INGEST_ADDR": "nonsense"}, "streams", "list"); err == nil ||
		!strings.Contains(err.Error(), "FLYWHEEL_INGEST_ADDR") {
		t.Fatalf("want an error naming the variable, got %v", err)
	}
}

const (
	streamsReply = `{"streams":[{"name":"transactions","schema_version":3,"fingerprint":"9f2c41aa07be5511","event_id":{"fields":["transaction_id"]},
		"entity":"card_id","event_time":"event_time","topics":{"raw":"raw.transactions","events":"events.transactions","dlq":"dlq.transactions"}}]}`
	onlineReply = `{"feature_names":["card_activity:txn_count_1h","card_activity:last_country"],"view_versions":{"card_activity":"9f2c"},
		"rows":[{"entity":{"card_id":"c-1"},"values":[3,"DE"],"statuses":["PRESENT","PRESENT"],"event_timestamps":["2026-11-22T10:05:00Z",null]}]}`
	historicalReply = "ndjson:" + `{"row":0,"card_id":"c-1","event_timestamp":"2026-11-22T10:00:00Z","card_activity:txn_count_1h":2,"card_activity:last_country":"FR"}` + "\n"
	viewsReply      = `{"views":[{"name":"card_activity","version":"9f2c","entities":["card_id"],"source":"transactions","ttl":"168h0m0s","lateness":"1m0s",
		"features":[{"name":"txn_count_1h","agg":"count"},{"name":"last_country","agg":"last"}]}]}`
	backfillReply = `{"view":"card_activity","version":"9f2c","from":"2026-11-15T10:00:00Z","cut":"2026-11-22T10:00:00Z","events":120,"updates":120,
		"late_dropped":0,"entities":40,"elapsed_ns":1500000000}`
	driftReply = `{"latest":[{"version":2,"kind":"data","feature":"amount","method":"psi","window_end":"2026-11-22T10:00:00Z","n":500,"score":0.31,"threshold":0.2,"drifted":true}],
		"events":[{"id":"d-1","version":2,"kind":"data","feature":"amount","detected_at":"2026-11-22T10:00:01Z"}]}`
)

// Every command prints a table by default and one JSON document with -o json, through the
// one output helper.
func TestOutputFormats(t *testing.T) {
	t.Parallel()
	svc := newFakeService(t, map[string]string{
		"GET /v1/streams":              streamsReply,
		"POST /v1/features/online":     onlineReply,
		"POST /v1/features/historical": historicalReply,
		"GET /v1/feature-views":        viewsReply,
		"POST /v1/features/backfill":   backfillReply,
		"GET /v1/models/fraud/drift":   driftReply,
	})
	env := map[string]string{"FLYWHEEL_INGEST_URL": svc.URL, "FLYWHEEL_FEATURES_URL": svc.URL, "FLYWHEEL_MONITOR_URL": svc.URL}
	for _, tt := range []struct {
		args  []string
		table []string // substrings of the table
		json  string   // a path into the JSON that must exist: key or key.0.key
	}{
		{[]string{"streams", "list"}, []string{"STREAM", "transactions  3", "transaction_id", "raw.transactions events.transactions dlq.transactions"}, "streams.0.schema_version"},
		{[]string{"streams", "list", "--local"}, []string{"transactions", "fraud_labels"}, "streams.0.topics"},
		{[]string{"features", "get", "card_activity", "card_id=c-1"}, []string{"card_id=c-1  card_activity:txn_count_1h  3", "DE", "2026-11-22T10:05:00Z"}, "rows.0.values"},
		{[]string{"features", "historical", "--view", "card_activity", "--row", `{"card_id":"c-1","event_timestamp":"2026-11-22T10:00:00Z"}`},
			[]string{"ROW  CARD_ID  EVENT_TIMESTAMP", "LAST_COUNTRY", "0    c-1      2026-11-22T10:00:00Z  FR"}, "0.card_activity:txn_count_1h"},
		{[]string{"features", "views"}, []string{"card_activity  9f2c", "txn_count_1h,last_country"}, "views.0.features"},
		{[]string{"features", "backfill", "--view", "card_activity"}, []string{"Events replayed:", "120", "1.5s"}, "entities"},
		{[]string{"drift", "status", "fraud"}, []string{"psi", "0.31", "d-1"}, "latest.0.score"},
		{[]string{"version"}, []string{""}, "version"},
	} {
		name := strings.Join(tt.args, " ")
		out, err := runCLI(t, env, tt.args...)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, want := range tt.table {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the table lacks %q:\n%s", name, want, out)
			}
		}
		out, err = runCLI(t, env, append(tt.args, "-o", "json")...)
		if err != nil {
			t.Errorf("%s -o json: %v", name, err)
			continue
		}
		var doc any
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Errorf("%s -o json is not one JSON document: %v\n%s", name, err, out)
			continue
		}
		if !hasPath(doc, tt.json) {
			t.Errorf("%s -o json lacks %s:\n%s", name, tt.json, out)
		}
	}
	if got := svc.bodies["POST /v1/features/online"][0]; !strings.Contains(got, `"feature_service":"card_activity"`) || !strings.Contains(got, `"card_id":"c-1"`) {
		t.Errorf("online lookup body: %s", got)
	}
}

// hasPath says whether doc holds the dotted path (object keys, or array indexes as numbers).
func hasPath(doc any, path string) bool {
	for _, part := range strings.Split(path, ".") {
		switch x := doc.(type) {
		case map[string]any:
			v, ok := x[part]
			if !ok {
				return false
			}
			doc = v
		case []any:
			i := 0
			for _, c := range part {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return false
			}
			doc = x[i]
		default:
			return false
		}
	}
	return true
}

// produce sends NDJSON to ingest in batches and reports rejected events by their line in
// the input, across batches; any rejection makes it exit non-zero.
func TestStreamsProduceCountsAndNamesRejectedLines(t *testing.T) {
	t.Parallel()
	// Each batch of two: the second event rejected.
	svc := newFakeService(t, map[string]string{"POST /v1/streams/transactions/events": `{"accepted":1,"duplicates":0,"rejected":1,
		"errors":[{"index":1,"reasons":["/amount: must be >= 0, got -3"]}]}`})
	env := map[string]string{"FLYWHEEL_INGEST_URL": svc.URL}
	out, err := runCLI(t, env, "streams", "produce", "transactions", "-f", "testdata/payments.ndjson", "--batch", "2")
	if err == nil || !strings.Contains(err.Error(), "2 of 4 events were rejected") || !strings.Contains(err.Error(), "dlq.transactions") {
		t.Fatalf("want an error counting the rejections, got %v", err)
	}
	// payments.ndjson has a blank line 3: the events are on lines 1, 2, 4 and 5.
	for _, want := range []string{"4 events sent to transactions", "2 accepted", "2 rejected", "2     /amount: must be >= 0, got -3", "5     /amount"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	key := "POST /v1/streams/transactions/events"
	if n := len(svc.bodies[key]); n != 2 || svc.contentTypes[key] != "application/x-ndjson" || strings.Count(svc.bodies[key][0], "\n") != 2 {
		t.Fatalf("want two NDJSON requests of two events, got %d (%s): %q", n, svc.contentTypes[key], svc.bodies[key])
	}

	out, _ = runCLI(t, env, "streams", "produce", "transactions", "-f", "testdata/payments.ndjson", "-o", "json")
	var sum struct {
		Sent, Accepted, Rejected int
		Rejections               []struct {
			Line    int      `json:"line"`
			Reasons []string `json:"reasons"`
		}
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Sent != 4 || len(sum.Rejections) != 1 || sum.Rejections[0].Line != 2 {
		t.Fatalf("want the JSON summary of one batch of 4, got %v:\n%s", err, out)
	}
}

// rollback without --to is the registry's one-call rollback; with --to an audited move to
// that version whose reason says it is a rollback.
func TestModelsRollbackTo(t *testing.T) {
	t.Parallel()
	base := fakeRegistry(t, exchange{method: "POST", path: "/v1/models/fraud/aliases/champion", auth: "Bearer env-token",
		body:  `{"version":2,"reason":"rollback: precision"}`,
		reply: `{"move":{"model":"fraud","alias":"champion","version":2,"previous":4,"revision":9}}`})
	out, err := runCLI(t, registryEnv(base), "models", "rollback", "fraud", "--to", "2", "--reason", "precision")
	if err != nil || out != "fraud: champion 4 → 2 (revision 9)\n" {
		t.Fatalf("%v: %q", err, out)
	}
}

// Every command says how to use it with an example, and every command that prints data
// takes -o.
func TestEveryCommandHasAnExampleAndOutputFlag(t *testing.T) {
	t.Parallel()
	root := cli.New(io.Discard, io.Discard, func(string) (string, bool) { return "", false })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Example == "" {
			t.Errorf("%q has no example", c.CommandPath())
		}
		if c.Runnable() && c.Name() != "demo" && c.Flag("output") == nil {
			t.Errorf("%q has no -o/--output", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// models import talks to the registry through the registry's own Go client; a registry that
// does not answer is reported the same way.
func TestModelsImportUnreachableRegistry(t *testing.T) {
	t.Parallel()
	gz, err := os.Open("../../../ml/forest/xgboost/testdata/binary.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(t.TempDir(), "model.json")
	raw, _ := io.ReadAll(zr)
	if err := os.WriteFile(model, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	base := closedURL(t)
	_, err = runCLI(t, map[string]string{"FLYWHEEL_REGISTRY_URL": base}, "models", "import", "m", model, "--format", "xgboost")
	var ue *cli.UnreachableError
	if !errors.As(err, &ue) || ue.Service != "registry" || !strings.Contains(err.Error(), "registry at "+base+" is unreachable: start it with") {
		t.Fatalf("want the registry named unreachable, got %v", err)
	}
}

// A batch of one event too large for the broker is answered 413 by ingest; produce counts it
// as a rejection like any other and goes on.
func TestStreamsProduceSingleEventTooLarge(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "t-3") {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			_, _ = io.WriteString(w, `{"error":{"code":"event_too_large","message":"the event is 2000000 bytes, over its size limit of 1048328 bytes"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"accepted":1,"duplicates":0,"rejected":0,"errors":[]}`)
	}))
	t.Cleanup(srv.Close)
	out, err := runCLI(t, map[string]string{"FLYWHEEL_INGEST_URL": srv.URL}, "streams", "produce", "transactions", "-f", "testdata/payments.ndjson", "--batch", "1")
	if err == nil || !strings.Contains(err.Error(), "1 of 4 events were rejected") || !strings.Contains(out, "4     /: the event is 2000000 bytes") {
		t.Fatalf("%v\n%s", err, out)
	}
}
