// Package demo walks through what Flywheel can do so far against running services, printing
// each step so a newcomer sees the lifecycle work. It grows with every capability.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
)

// Config says where the services and the broker are.
type Config struct {
	Kafka      kafkax.Config
	ClickHouse chx.Config
	Run        string            // keeps this run's event ids apart from earlier runs'
	Services   map[string]string // name -> base URL
	Token      string            // bearer token, when auth is on
}

// DefaultServices are the services' default addresses.
func DefaultServices() map[string]string {
	return map[string]string{
		"ingest": "http://127.0.0.1:8081", "features": "http://127.0.0.1:8082", "registry": "http://127.0.0.1:8083",
		"serving": "http://127.0.0.1:8084", "monitor": "http://127.0.0.1:8085", "trainer": "http://127.0.0.1:8086",
	}
}

// Run runs every step in order and stops at the first that fails.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	steps := []struct {
		title string
		run   func(context.Context, Config, io.Writer) error
	}{
		{"services are up and ready", checkServices},
		{"Kafka topics", listTopics},
		{"ingest over HTTP: partial acceptance with reasons", ingestOverHTTP},
		{"ingest from raw.transactions: DLQ, event log, dedupe", ingestOverKafka},
		{"features: live online values, moving as a transaction arrives", liveFeatures},
		{"features: a point-in-time training set", trainingSet},
		{"registry: an experiment with runs and metrics over MLflow's REST API", experimentRuns},
		{"registry: a model version with lineage; champion moves, audited", modelLineage},
	}
	for i, s := range steps {
		fmt.Fprintf(out, "\n== %d. %s\n", i+1, s.title)
		if err := s.run(ctx, cfg, out); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, s.title, err)
		}
	}
	fmt.Fprintln(out, "\ndemo finished: everything above ran against the real local stack")
	return nil
}

func checkServices(ctx context.Context, cfg Config, out io.Writer) error {
	names := make([]string, 0, len(cfg.Services))
	for n := range cfg.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	client := &http.Client{Timeout: 5 * time.Second}
	for _, name := range names {
		base := cfg.Services[name]
		var ready struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		code, err := getJSON(ctx, client, base+"/readyz", &ready)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		checks := make([]string, 0, len(ready.Checks))
		for dep, status := range ready.Checks {
			checks = append(checks, dep+"="+status)
		}
		sort.Strings(checks)
		fmt.Fprintf(out, "  %-9s %-28s /readyz %d %-9s %s\n", name, base, code, ready.Status, strings.Join(checks, " "))
		if code != http.StatusOK {
			return fmt.Errorf("%s is not ready", name)
		}
	}
	return nil
}

func listTopics(ctx context.Context, cfg Config, out io.Writer) error {
	topics, err := kafkax.NewAdmin(cfg.Kafka).Topics(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  %d topics on %s: %s\n", len(topics), strings.Join(cfg.Kafka.Brokers, ","), strings.Join(topics, " "))
	return nil
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
}
