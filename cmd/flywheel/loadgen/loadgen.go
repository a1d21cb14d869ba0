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
	var mu sync.Mutex
	var latencies []time.Duration
	var rep Report
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Go(func() {
			buf := make([]byte, 0, cfg.Batch*260)
			var local []time.Duration
			events, errs, reqs := 0, 0, 0
			firstErr := ""
			for ctx.Err() == nil {
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
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs++
						if firstErr == "" {
							firstErr = err.Error()
						}
					}
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				reqs++
				if resp.StatusCode != http.StatusOK {
					errs++
					if firstErr == "" {
						firstErr = fmt.Sprintf("%d %s", resp.StatusCode, body)
					}
					continue
				}
				local = append(local, time.Since(t0))
				events += cfg.Batch
			}
			mu.Lock()
			latencies = append(latencies, local...)
			rep.Events += events
			rep.Errors += errs
			rep.Requests += reqs
			if rep.FirstError == "" {
				rep.FirstError = firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	if len(latencies) == 0 {
		return rep, fmt.Errorf("no request succeeded: %s", rep.FirstError)
	}
	slices.Sort(latencies)
	rep.P50 = latencies[len(latencies)*50/100]
	rep.P99 = latencies[min(len(latencies)-1, len(latencies)*99/100)]
	rep.Max = latencies[len(latencies)-1]
	return rep, nil
}
