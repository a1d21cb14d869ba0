package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// LookupConfig is an open-loop lookup load: requests are scheduled at a fixed rate and each
// latency is measured from its scheduled start, so a slow server cannot hide its queueing
// (no coordinated omission).
type LookupConfig struct {
	URL      string
	View     string
	Features int
	Entities int
	Cards    int
	QPS      int
	Duration time.Duration
	Token    string
}

// LookupReport is what a lookup run measured.
type LookupReport struct {
	Requests, Errors int
	P50, P90, P99    time.Duration
	Max              time.Duration
	FirstError       string
}

func (r LookupReport) String() string {
	return fmt.Sprintf("%d requests: p50 %v p90 %v p99 %v max %v; %d errors %s", r.Requests, r.P50, r.P90, r.P99, r.Max, r.Errors, r.FirstError)
}

// Lookup runs the load.
func Lookup(ctx context.Context, cfg LookupConfig) (LookupReport, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}
	var views struct {
		Views []struct {
			Name     string
			Features []struct{ Name string }
		}
	}
	if err := getJSON(ctx, client, cfg.URL+"/v1/feature-views", cfg.Token, &views); err != nil {
		return LookupReport{}, err
	}
	var names []string
	for _, v := range views.Views {
		if v.Name == cfg.View {
			for _, f := range v.Features {
				names = append(names, v.Name+":"+f.Name)
			}
		}
	}
	if len(names) < cfg.Features {
		return LookupReport{}, fmt.Errorf("view %s has %d features, %d asked", cfg.View, len(names), cfg.Features)
	}
	names = names[:cfg.Features]
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := make([][]byte, 256)
	for i := range bodies {
		cards := make([]string, cfg.Entities)
		for j := range cards {
			cards[j] = fmt.Sprintf("c-%d", rng.IntN(cfg.Cards))
		}
		bodies[i], _ = json.Marshal(map[string]any{"features": names, "entities": map[string]any{"card_id": cards}})
	}
	type job struct {
		at   time.Time
		body []byte
	}
	jobs := make(chan job, cfg.QPS)
	var mu sync.Mutex
	var lat []time.Duration
	var rep LookupReport
	var wg sync.WaitGroup
	for range 128 {
		wg.Go(func() {
			for j := range jobs {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL+"/get-online-features", bytes.NewReader(j.body))
				req.Header.Set("Content-Type", "application/json")
				if cfg.Token != "" {
					req.Header.Set("Authorization", "Bearer "+cfg.Token)
				}
				resp, err := client.Do(req)
				var status int
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				d := time.Since(j.at)
				mu.Lock()
				rep.Requests++
				if err != nil || status != http.StatusOK {
					rep.Errors++
					if rep.FirstError == "" {
						rep.FirstError = fmt.Sprint(status, err)
					}
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		})
	}
	interval := time.Second / time.Duration(cfg.QPS)
	start := time.Now()
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= cfg.Duration || ctx.Err() != nil {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		jobs <- job{at: at, body: bodies[i%len(bodies)]}
	}
	close(jobs)
	wg.Wait()
	if len(lat) == 0 {
		return rep, fmt.Errorf("no request succeeded: %s", rep.FirstError)
	}
	slices.Sort(lat)
	rep.P50, rep.P90 = lat[len(lat)/2], lat[len(lat)*90/100]
	rep.P99, rep.Max = lat[len(lat)*99/100], lat[len(lat)-1]
	return rep, nil
}

func getJSON(ctx context.Context, client *http.Client, url, token string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
