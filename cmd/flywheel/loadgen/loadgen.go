// Package loadgen drives load against Flywheel's HTTP APIs and reports throughput and latency
// percentiles, for the figures in docs/benchmarks.md.
package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// IngestConfig is a closed-loop ingest load: Concurrency clients each POST batches of Batch
// fresh events (unique ids, so dedupe never short-circuits) for Duration.
type IngestConfig struct {
	URL         string // ingest base URL
	Stream      string
	Batch       int
	Concurrency int
	Duration    time.Duration
	Token       string
}

// Report is what a run measured.
type Report struct {
	Requests   int
	Events     int
	Errors     int
	Elapsed    time.Duration
	P50, P99   time.Duration
	Max        time.Duration
	FirstError string
}

// EventsPerSecond is the accepted-event throughput.
func (r Report) EventsPerSecond() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

func (r Report) String() string {
	return fmt.Sprintf("%d requests, %d events in %v: %.0f events/s; batch latency p50 %v p99 %v max %v; %d errors %s",
		r.Requests, r.Events, r.Elapsed.Round(time.Millisecond), r.EventsPerSecond(), r.P50, r.P99, r.Max, r.Errors, r.FirstError)
}

// Ingest runs the load and reports.
func Ingest(ctx context.Context, cfg IngestConfig) (Report, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency * 2}, Timeout: 30 * time.Second}
	url := cfg.URL + "/v1/streams/" + cfg.Stream + "/events"
	run := time.Now().UnixNano()
	var seq atomic.Int64
	res := closedLoop(ctx, cfg.Concurrency, cfg.Duration, func(w int) call {
		buf := make([]byte, 0, cfg.Batch*260)
		return func(context.Context, int64) (int, error) {
			buf = buf[:0]
			buf = append(buf, '[')
			for i := range cfg.Batch {
				if i > 0 {
					buf = append(buf, ',')
				}
				// strconv rather than fmt: the generator shares the machine with what it measures.
				n := seq.Add(1)
				buf = append(buf, `{"transaction_id":"lg-`...)
				buf = strconv.AppendInt(buf, run, 36)
				buf = append(buf, '-')
				buf = strconv.AppendInt(buf, n, 10)
				buf = append(buf, `","card_id":"c-`...)
				buf = strconv.AppendInt(buf, (n*7919+int64(w))%5000, 10)
				buf = append(buf, `","amount":`...)
				buf = strconv.AppendInt(buf, n%500, 10)
				buf = append(buf, `.25,"currency":"EUR","merchant_id":"m-`...)
				buf = strconv.AppendInt(buf, n%300, 10)
				buf = append(buf, `","merchant_category":"grocery","country":"DE","channel":"pos","event_time":"2026-11-21T10:00:00Z"}`...)
			}
			buf = append(buf, ']')
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(buf))
			req.Header.Set("Content-Type", "application/json")
			if cfg.Token != "" {
				req.Header.Set("Authorization", "Bearer "+cfg.Token)
			}
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return 0, fmt.Errorf("%d %s", resp.StatusCode, body)
			}
			return cfg.Batch, nil
		}
	})
	rep := Report{Requests: res.requests, Events: res.units, Errors: res.errors, Elapsed: res.elapsed, FirstError: res.firstError}
	if len(res.latencies) == 0 {
		return rep, fmt.Errorf("no request succeeded: %s", rep.FirstError)
	}
	lat := res.latencies
	rep.P50 = lat[len(lat)*50/100]
	rep.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
	rep.Max = lat[len(lat)-1]
	return rep, nil
}

// call is one client's request: it returns the units it got done (events, metric points).
type call func(ctx context.Context, iteration int64) (units int, err error)

// loopResult is what a closed-loop run measured; latencies are of successful calls, sorted.
type loopResult struct {
	requests, units, errors int
	elapsed                 time.Duration
	latencies               []time.Duration
	firstError              string
}

// closedLoop runs workers clients for d, each calling its call (made by newCall) back to back.
// Calls run under ctx rather than the deadline: a call in flight at the deadline completes and
// counts, rather than being cut off and reported as an error.
func closedLoop(ctx context.Context, workers int, d time.Duration, newCall func(worker int) call) loopResult {
	loadCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var res loopResult
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		c := newCall(w)
		wg.Go(func() {
			var local loopResult
			for i := int64(1); loadCtx.Err() == nil; i++ {
				t0 := time.Now()
				units, err := c(ctx, i)
				local.requests++
				if err != nil {
					local.errors++
					if local.firstError == "" {
						local.firstError = err.Error()
					}
					continue
				}
				local.latencies = append(local.latencies, time.Since(t0))
				local.units += units
			}
			mu.Lock()
			defer mu.Unlock()
			res.requests += local.requests
			res.units += local.units
			res.errors += local.errors
			res.latencies = append(res.latencies, local.latencies...)
			if res.firstError == "" {
				res.firstError = local.firstError
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.latencies)
	return res
}
