package loadgen_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/loadgen"
)

// fakeMLflow is the part of the registry's MLflow API the load tools call, in memory.
type fakeMLflow struct {
	t           *testing.T
	mu          sync.Mutex
	experiments map[string]*fakeExperiment // by name
	runs        map[string]string          // run id -> experiment id
	steps       map[string]int64           // run id -> last logged step
	points      int
	busy        int // runs/search answers 503 this many times first
}

type fakeExperiment struct {
	id   string
	tags map[string]string
}

func newFakeMLflow(t *testing.T) (*fakeMLflow, *httptest.Server) {
	f := &fakeMLflow{t: t, experiments: map[string]*fakeExperiment{}, runs: map[string]string{}, steps: map[string]int64{}}
	srv := httptest.NewServer(http.StripPrefix("/api/2.0/mlflow/", http.HandlerFunc(f.serve)))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeMLflow) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var body struct {
		Name, Key, Value string
		RunID            string   `json:"run_id"`
		ExperimentID     string   `json:"experiment_id"`
		ExperimentIDs    []string `json:"experiment_ids"`
		MaxResults       int      `json:"max_results"`
		PageToken        string   `json:"page_token"`
		Metrics          []struct {
			Key  string
			Step int64
		}
	}
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			f.t.Errorf("%s: %v", r.URL.Path, err)
		}
	}
	answer := func(v any) { _ = json.NewEncoder(w).Encode(v) }
	fail := func(status int, code string) {
		w.WriteHeader(status)
		answer(map[string]string{"error_code": code, "message": code})
	}
	switch r.URL.Path {
	case "experiments/get-by-name":
		e, ok := f.experiments[r.URL.Query().Get("experiment_name")]
		if !ok {
			fail(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
			return
		}
		var tags []map[string]string
		for k, v := range e.tags {
			tags = append(tags, map[string]string{"key": k, "value": v})
		}
		answer(map[string]any{"experiment": map[string]any{"experiment_id": e.id, "tags": tags}})
	case "experiments/create":
		id := strconv.Itoa(len(f.experiments) + 1)
		f.experiments[body.Name] = &fakeExperiment{id: id, tags: map[string]string{}}
		answer(map[string]string{"experiment_id": id})
	case "experiments/set-experiment-tag":
		for _, e := range f.experiments {
			if e.id == body.ExperimentID {
				e.tags[body.Key] = body.Value
			}
		}
		answer(struct{}{})
	case "runs/create":
		id := fmt.Sprintf("run%d", len(f.runs))
		f.runs[id] = body.ExperimentID
		answer(map[string]any{"run": map[string]any{"info": map[string]string{"run_id": id}}})
	case "runs/log-batch":
		keys := map[string]bool{}
		for _, m := range body.Metrics {
			keys[m.Key] = true
			if m.Step <= f.steps[body.RunID] && len(body.Metrics) > 2 {
				f.t.Errorf("run %s: step %d after %d", body.RunID, m.Step, f.steps[body.RunID])
			}
		}
		if len(keys) != len(body.Metrics) {
			f.t.Errorf("run %s: repeated metric keys in %v", body.RunID, body.Metrics)
		}
		if len(body.Metrics) > 0 {
			f.steps[body.RunID] = body.Metrics[0].Step
		}
		f.points += len(body.Metrics)
		answer(struct{}{})
	case "runs/search":
		if f.busy > 0 {
			f.busy--
			fail(http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE")
			return
		}
		var matching []map[string]any
		for id, exp := range f.runs {
			if exp == body.ExperimentIDs[0] {
				matching = append(matching, map[string]any{"info": map[string]string{"run_id": id}})
			}
		}
		offset, _ := strconv.Atoi(body.PageToken)
		end := min(offset+body.MaxResults, len(matching))
		next := ""
		if end < len(matching) {
			next = strconv.Itoa(end)
		}
		answer(map[string]any{"runs": matching[min(offset, end):end], "next_page_token": next})
	default:
		fail(http.StatusNotFound, "ENDPOINT_NOT_FOUND")
	}
}

func TestRegistryLog(t *testing.T) {
	t.Parallel()
	f, srv := newFakeMLflow(t)
	rep, err := loadgen.RegistryLog(context.Background(), loadgen.RegistryLogConfig{
		URL: srv.URL, Concurrency: 3, Metrics: 10, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if rep.Errors != 0 || rep.Requests == 0 || rep.Points != 10*rep.Requests || rep.Points != f.points {
		t.Errorf("report %+v, server saw %d points", rep, f.points)
	}
	if len(f.runs) != 3 || len(f.steps) != 3 {
		t.Errorf("%d runs created, %d logged to; want 3 and 3", len(f.runs), len(f.steps))
	}
	if rep.P50 <= 0 || rep.P50 > rep.P99 || rep.P99 > rep.Max {
		t.Errorf("percentiles out of order: %+v", rep.LookupReport)
	}
}

func TestRegistrySearchSeedsOnce(t *testing.T) {
	t.Parallel()
	f, srv := newFakeMLflow(t)
	cfg := loadgen.RegistrySearchConfig{URL: srv.URL, Experiment: "bench", Runs: 50, SeedConcurrency: 4, Iterations: 3}
	f.busy = 2
	rep, err := loadgen.RegistrySearch(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seeded != 50 || rep.Runs != 50 || len(rep.Searches) != 2 {
		t.Fatalf("first run: %+v", rep)
	}
	for _, s := range rep.Searches {
		if s.Requests != 3 || s.Errors != 0 || s.Returned != 50 {
			t.Errorf("%+v", s)
		}
	}
	rep, err = loadgen.RegistrySearch(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seeded != 0 || rep.Runs != 50 {
		t.Errorf("second run seeded again: %+v", rep)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.runs) != 50 || f.points != 100 {
		t.Errorf("server holds %d runs and %d points, want 50 and 100", len(f.runs), f.points)
	}
}

// An experiment whose seeding never finished (no count tag) is counted and topped up.
func TestRegistrySearchTopsUpUnfinishedSeeding(t *testing.T) {
	t.Parallel()
	f, srv := newFakeMLflow(t)
	f.experiments["bench"] = &fakeExperiment{id: "7", tags: map[string]string{}}
	for i := range 12 {
		f.runs["old"+strconv.Itoa(i)] = "7"
	}
	rep, err := loadgen.RegistrySearch(context.Background(), loadgen.RegistrySearchConfig{
		URL: srv.URL, Experiment: "bench", Runs: 30, SeedConcurrency: 3, Iterations: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if rep.Seeded != 18 || rep.Runs != 30 || f.experiments["bench"].tags["flywheel.bench.seeded_runs"] != "30" {
		t.Errorf("%+v, tags %v", rep, f.experiments["bench"].tags)
	}
}
