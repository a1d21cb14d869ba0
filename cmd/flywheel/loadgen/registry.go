package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RegistryLogConfig is a closed-loop metric-logging load on the registry's MLflow API:
// Concurrency clients, each with its own run in a fresh experiment, POST runs/log-batch with
// Metrics points (keys m0.., one step further each call) for Duration.
type RegistryLogConfig struct {
	URL         string // registry base URL
	Token       string
	Concurrency int
	Metrics     int // points per log-batch call, distinct keys
	Duration    time.Duration
}

// RegistryLogReport is what a log-batch run measured: request latencies (successful calls
// only) in the lookup report's shape, and throughput.
type RegistryLogReport struct {
	LookupReport
	Points  int // metric points accepted
	Elapsed time.Duration
}

// RequestsPerSecond is the accepted log-batch calls per second.
func (r RegistryLogReport) RequestsPerSecond() float64 {
	return float64(r.Requests-r.Errors) / r.Elapsed.Seconds()
}

// PointsPerSecond is the accepted metric points per second.
func (r RegistryLogReport) PointsPerSecond() float64 { return float64(r.Points) / r.Elapsed.Seconds() }

func (r RegistryLogReport) String() string {
	return fmt.Sprintf("%d log-batch calls, %d metric points in %v: %.0f requests/s, %.0f points/s; latency p50 %v p90 %v p99 %v max %v; %d errors %s",
		r.Requests, r.Points, r.Elapsed.Round(time.Millisecond), r.RequestsPerSecond(), r.PointsPerSecond(),
		us(r.P50), us(r.P90), us(r.P99), us(r.Max), r.Errors, r.FirstError)
}

// us rounds a latency for printing.
func us(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }

// setLatencies sorts lat and fills the percentiles from it.
func (r *LookupReport) setLatencies(lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	r.P50, r.P90 = lat[len(lat)/2], lat[len(lat)*90/100]
	r.P99, r.Max = lat[len(lat)*99/100], lat[len(lat)-1]
}

// RegistryLog creates the experiment and the runs, then runs the load.
func RegistryLog(ctx context.Context, cfg RegistryLogConfig) (RegistryLogReport, error) {
	if cfg.Concurrency < 1 || cfg.Metrics < 1 {
		return RegistryLogReport{}, fmt.Errorf("concurrency %d and metrics %d must be positive", cfg.Concurrency, cfg.Metrics)
	}
	c := newMLflowClient(cfg.URL, cfg.Token, cfg.Concurrency)
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	exp, err := c.createExperiment(ctx, "flywheel-bench-log-"+tag)
	if err != nil {
		return RegistryLogReport{}, err
	}
	runs := make([]string, cfg.Concurrency)
	for i := range runs {
		if runs[i], err = c.createRun(ctx, exp, "log-"+strconv.Itoa(i)); err != nil {
			return RegistryLogReport{}, err
		}
	}
	keys := make([]string, cfg.Metrics)
	for i := range keys {
		keys[i] = "m" + strconv.Itoa(i)
	}

	res := closedLoop(ctx, cfg.Concurrency, cfg.Duration, func(w int) call {
		run := runs[w]
		buf := make([]byte, 0, 64+cfg.Metrics*80)
		return func(ctx context.Context, step int64) (int, error) {
			// strconv rather than encoding/json: the generator shares the cores with what it measures.
			now := time.Now().UnixMilli()
			buf = append(buf[:0], `{"run_id":"`...)
			buf = append(buf, run...)
			buf = append(buf, `","metrics":[`...)
			for i, k := range keys {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, `{"key":"`...)
				buf = append(buf, k...)
				buf = append(buf, `","value":`...)
				buf = strconv.AppendFloat(buf, float64(step%1000)/1000+float64(i), 'g', -1, 64)
				buf = append(buf, `,"timestamp":`...)
				buf = strconv.AppendInt(buf, now, 10)
				buf = append(buf, `,"step":`...)
				buf = strconv.AppendInt(buf, step, 10)
				buf = append(buf, '}')
			}
			buf = append(buf, "]}"...)
			if err := c.post(ctx, "runs/log-batch", buf, nil); err != nil {
				return 0, err
			}
			return len(keys), nil
		}
	})
	rep := RegistryLogReport{Points: res.units, Elapsed: res.elapsed}
	rep.Requests, rep.Errors, rep.FirstError = res.requests, res.errors, res.firstError
	if len(res.latencies) == 0 {
		return rep, fmt.Errorf("no log-batch call succeeded: %s", rep.FirstError)
	}
	rep.setLatencies(res.latencies)
	return rep, nil
}

// RegistrySearchConfig measures runs/search over an experiment of Runs runs, seeding them
// first (SeedConcurrency clients, each run created then given metrics auc and loss and
// params model and max_depth by one log-batch) unless the experiment already holds them.
type RegistrySearchConfig struct {
	URL             string
	Token           string
	Experiment      string // name; created when missing
	Runs            int
	SeedConcurrency int
	Iterations      int       // sequential searches per query
	Progress        io.Writer // seeding progress; nil discards it
}

// SeedModels are the values of the seeded runs' param model, in turn: a filter on one of
// them matches a quarter of the runs.
var SeedModels = []string{"gbt", "rf", "logreg", "mlp"}

// RegistrySearchQuery is one runs/search body measured.
type RegistrySearchQuery struct {
	Name string
	Body map[string]any
}

// RegistrySearchQueries are the searches RegistrySearch measures over experiment id: the
// metric filter ordered by that metric (half the seeded runs match), and a param filter
// without an order (a quarter match), both at max_results 1000.
func RegistrySearchQueries(id string) []RegistrySearchQuery {
	return []RegistrySearchQuery{
		{Name: "metrics.auc > 0.5 ORDER BY metrics.auc DESC", Body: map[string]any{"experiment_ids": []string{id},
			"filter": "metrics.auc > 0.5", "max_results": 1000, "order_by": []string{"metrics.auc DESC"}}},
		{Name: "params.model = 'gbt'", Body: map[string]any{"experiment_ids": []string{id},
			"filter": "params.model = 'gbt'", "max_results": 1000}},
	}
}

// SearchReport is one query's latencies over sequential calls.
type SearchReport struct {
	Query string
	LookupReport
	Returned int // runs in the last answer
}

func (r SearchReport) String() string {
	return fmt.Sprintf("%s: %d runs returned; %d searches: p50 %v p90 %v p99 %v max %v; %d errors %s",
		r.Query, r.Returned, r.Requests, us(r.P50), us(r.P90), us(r.P99), us(r.Max), r.Errors, r.FirstError)
}

// RegistrySearchReport is what a search run measured.
type RegistrySearchReport struct {
	ExperimentID string
	Runs         int           // runs the experiment holds (at least; the count seeding recorded)
	Seeded       int           // runs this invocation created
	SeedElapsed  time.Duration // zero when nothing was seeded
	Searches     []SearchReport
}

// seededTag records, on the experiment, how many runs seeding completed, so a second
// invocation skips it.
const seededTag = "flywheel.bench.seeded_runs"

// RegistrySearch seeds when needed, then measures each of RegistrySearchQueries.
func RegistrySearch(ctx context.Context, cfg RegistrySearchConfig) (RegistrySearchReport, error) {
	if cfg.Runs < 1 || cfg.SeedConcurrency < 1 || cfg.Iterations < 1 {
		return RegistrySearchReport{}, fmt.Errorf("runs %d, seed concurrency %d and iterations %d must be positive", cfg.Runs, cfg.SeedConcurrency, cfg.Iterations)
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	c := newMLflowClient(cfg.URL, cfg.Token, cfg.SeedConcurrency)
	exp, have, err := c.seedState(ctx, cfg.Experiment)
	if err != nil {
		return RegistrySearchReport{}, err
	}
	rep := RegistrySearchReport{ExperimentID: exp, Runs: have}
	if have < cfg.Runs {
		fmt.Fprintf(progress, "experiment %s (%s) holds %d runs; seeding %d with %d clients\n", cfg.Experiment, exp, have, cfg.Runs-have, cfg.SeedConcurrency)
		start := time.Now()
		if err := c.seed(ctx, exp, have, cfg.Runs, cfg.SeedConcurrency, progress); err != nil {
			return rep, err
		}
		rep.Seeded, rep.SeedElapsed, rep.Runs = cfg.Runs-have, time.Since(start), cfg.Runs
		if err := c.post(ctx, "experiments/set-experiment-tag", mustJSON(map[string]string{
			"experiment_id": exp, "key": seededTag, "value": strconv.Itoa(cfg.Runs)}), nil); err != nil {
			return rep, err
		}
	}
	for _, q := range RegistrySearchQueries(exp) {
		body := mustJSON(q.Body)
		// The first search waits for the runs index to include the seeded runs (the registry
		// answers 503 past its own bounded wait); it is not measured.
		if err := c.searchUntilReady(ctx, body, progress); err != nil {
			return rep, fmt.Errorf("search %s: %w", q.Name, err)
		}
		sr := SearchReport{Query: q.Name}
		var lat []time.Duration
		for range cfg.Iterations {
			var out struct {
				Runs []json.RawMessage `json:"runs"`
			}
			t0 := time.Now()
			raw, err := c.postRaw(ctx, "runs/search", body)
			d := time.Since(t0)
			sr.Requests++
			if err == nil {
				err = json.Unmarshal(raw, &out)
			}
			if err != nil {
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				sr.Errors++
				if sr.FirstError == "" {
					sr.FirstError = err.Error()
				}
				continue
			}
			lat = append(lat, d)
			sr.Returned = len(out.Runs)
		}
		if len(lat) == 0 {
			return rep, fmt.Errorf("search %s: no call succeeded: %s", q.Name, sr.FirstError)
		}
		sr.setLatencies(lat)
		rep.Searches = append(rep.Searches, sr)
	}
	return rep, nil
}

// seedState finds or creates the experiment named name and says how many runs it holds: the
// count seeding recorded, else (seeding never finished) a count of its runs.
func (c *mlflowClient) seedState(ctx context.Context, name string) (string, int, error) {
	var got struct {
		Experiment struct {
			ID   string `json:"experiment_id"`
			Tags []struct{ Key, Value string }
		}
	}
	err := c.get(ctx, "experiments/get-by-name?experiment_name="+url.QueryEscape(name), &got)
	var me *mlflowError
	if errors.As(err, &me) && me.Code == "RESOURCE_DOES_NOT_EXIST" {
		id, err := c.createExperiment(ctx, name)
		return id, 0, err
	}
	if err != nil {
		return "", 0, err
	}
	id := got.Experiment.ID
	for _, t := range got.Experiment.Tags {
		if t.Key == seededTag {
			n, err := strconv.Atoi(t.Value)
			if err != nil {
				return "", 0, fmt.Errorf("experiment %s: tag %s = %q is not a count", name, seededTag, t.Value)
			}
			return id, n, nil
		}
	}
	n, err := c.countRuns(ctx, id)
	return id, n, err
}

// countRuns pages through every run of experiment id.
func (c *mlflowClient) countRuns(ctx context.Context, id string) (int, error) {
	n, token := 0, ""
	for {
		var out struct {
			Runs          []json.RawMessage `json:"runs"`
			NextPageToken string            `json:"next_page_token"`
		}
		raw, err := c.postRaw(ctx, "runs/search", mustJSON(map[string]any{"experiment_ids": []string{id}, "max_results": 50000, "page_token": token}))
		if err == nil {
			err = json.Unmarshal(raw, &out)
		}
		if err != nil {
			return 0, fmt.Errorf("count runs of experiment %s: %w", id, err)
		}
		n += len(out.Runs)
		if token = out.NextPageToken; token == "" {
			return n, nil
		}
	}
}

// seed creates runs from..to-1 of experiment exp with clients concurrent clients, printing
// progress every 5 s.
func (c *mlflowClient) seed(ctx context.Context, exp string, from, to, clients int, progress io.Writer) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	done := make(chan struct{})
	var created sync.WaitGroup
	var mu sync.Mutex
	count := 0
	for range clients {
		created.Go(func() {
			for i := range next {
				if err := c.seedRun(ctx, exp, i); err != nil {
					cancel(fmt.Errorf("seed run %d: %w", i, err))
					return
				}
				mu.Lock()
				count++
				mu.Unlock()
			}
		})
	}
	go func() {
		start := time.Now()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				mu.Lock()
				n := count
				mu.Unlock()
				fmt.Fprintf(progress, "seeded %d/%d runs (%.0f runs/s)\n", n, to-from, float64(n)/time.Since(start).Seconds())
			}
		}
	}()
feed:
	for i := from; i < to; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	created.Wait()
	close(done)
	if err := context.Cause(ctx); err != nil {
		return err
	}
	fmt.Fprintf(progress, "seeded %d runs\n", to-from)
	return nil
}

// seedRun creates run i: auc and loss spread evenly over [0, 1) by a multiplicative hash of
// i (deterministic, no shared random source), model cycling through SeedModels.
func (c *mlflowClient) seedRun(ctx context.Context, exp string, i int) error {
	id, err := c.createRun(ctx, exp, "seed-"+strconv.Itoa(i))
	if err != nil {
		return err
	}
	auc := float64(uint32(i)*2654435761) / (1 << 32)
	body := mustJSON(map[string]any{
		"run_id": id,
		"metrics": []map[string]any{
			{"key": "auc", "value": auc, "timestamp": time.Now().UnixMilli(), "step": 0},
			{"key": "loss", "value": 1 - auc, "timestamp": time.Now().UnixMilli(), "step": 0},
		},
		"params": []map[string]string{
			{"key": "model", "value": SeedModels[i%len(SeedModels)]},
			{"key": "max_depth", "value": strconv.Itoa(3 + i%8)},
		},
	})
	return c.post(ctx, "runs/log-batch", body, nil)
}

// searchUntilReady retries body until the registry answers 200 (its runs index caught up),
// for at most five minutes.
func (c *mlflowClient) searchUntilReady(ctx context.Context, body []byte, progress io.Writer) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		_, err := c.postRaw(ctx, "runs/search", body)
		var me *mlflowError
		if err == nil || !errors.As(err, &me) || me.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return err
		}
		fmt.Fprintf(progress, "waiting for the runs index: %s\n", me.Message)
	}
}

// mlflowClient calls the registry's MLflow REST API.
type mlflowClient struct {
	http  *http.Client
	base  string
	token string
}

func newMLflowClient(base, token string, conns int) *mlflowClient {
	return &mlflowClient{
		http:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns * 2}, Timeout: 30 * time.Second},
		base:  strings.TrimRight(base, "/") + "/api/2.0/mlflow/",
		token: token,
	}
}

// mlflowError is a non-200 answer, with MLflow's error code when the body had one.
type mlflowError struct {
	Path    string
	Status  int
	Code    string
	Message string
}

func (e *mlflowError) Error() string {
	return fmt.Sprintf("%s: %d %s %s", e.Path, e.Status, e.Code, e.Message)
}

func (c *mlflowClient) post(ctx context.Context, path string, body []byte, out any) error {
	raw, err := c.postRaw(ctx, path, body)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", path, err)
	}
	return nil
}

func (c *mlflowClient) postRaw(ctx context.Context, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, path)
}

func (c *mlflowClient) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	raw, err := c.do(req, path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", path, err)
	}
	return nil
}

func (c *mlflowClient) do(req *http.Request, path string) ([]byte, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: read answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &mlflowError{Path: path, Status: resp.StatusCode}
		var doc struct {
			ErrorCode string `json:"error_code"`
			Message   string `json:"message"`
		}
		if json.Unmarshal(raw, &doc) == nil && doc.ErrorCode != "" {
			e.Code, e.Message = doc.ErrorCode, doc.Message
		} else {
			e.Message = string(raw[:min(len(raw), 200)])
		}
		return nil, e
	}
	return raw, nil
}

func (c *mlflowClient) createExperiment(ctx context.Context, name string) (string, error) {
	var out struct {
		ID string `json:"experiment_id"`
	}
	err := c.post(ctx, "experiments/create", mustJSON(map[string]string{"name": name}), &out)
	return out.ID, err
}

func (c *mlflowClient) createRun(ctx context.Context, exp, name string) (string, error) {
	var out struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	err := c.post(ctx, "runs/create", mustJSON(map[string]any{"experiment_id": exp, "run_name": name,
		"start_time": time.Now().UnixMilli()}), &out)
	return out.Run.Info.RunID, err
}

// mustJSON encodes v, which only ever holds strings, numbers, slices and maps of them.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
