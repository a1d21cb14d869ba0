package e2e_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// TestGrafanaPanelsAfterTheDemo runs every dashboard panel and annotation query on the
// database `make demo` filled (FLYWHEEL_GRAFANA_DEMO_DATABASE, set by make demo), over the
// last hour, as the plugin would, and fails naming each one that returns no rows: after the
// demo, every panel has something to show.
func TestGrafanaPanelsAfterTheDemo(t *testing.T) {
	database := os.Getenv("FLYWHEEL_GRAFANA_DEMO_DATABASE")
	if database == "" {
		t.Skip("runs after make demo, which sets FLYWHEEL_GRAFANA_DEMO_DATABASE (the dashboards' own test is TestGrafanaDashboards)")
	}
	addr := os.Getenv("FLYWHEEL_CLICKHOUSE_ADDR")
	if addr == "" {
		t.Fatal("FLYWHEEL_CLICKHOUSE_ADDR is not set: load the dev stack's env (set -a; . .flywheel/stack/env; set +a)")
	}
	db := clickhouse.OpenDB(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: "default", Username: "default"},
		Protocol: clickhouse.Native, DialTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second})
	t.Cleanup(func() { _ = db.Close() })
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatalf("ClickHouse at %s: %v (is the dev stack up? make demo starts it)", addr, err)
	}
	now := time.Now().UTC()
	rng := grafanaRange{from: now.Add(-time.Hour), to: now}
	for _, d := range loadGrafanaDashboards(t) {
		runGrafanaDashboard(t, db, d, database, rng, "all")
	}
}
