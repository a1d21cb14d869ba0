package chx_test

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
)

func TestSplitStatements(t *testing.T) {
	got := chx.SplitStatements("-- comment\nCREATE TABLE a (x UInt8)\nENGINE = Memory;\n\nCREATE TABLE b (y String) ENGINE = Memory;\nSELECT 1")
	if len(got) != 3 || !strings.HasPrefix(got[0], "CREATE TABLE a") || strings.HasSuffix(got[1], ";") || got[2] != "SELECT 1" {
		t.Fatalf("got %q", got)
	}
}

func TestShippedMigrationsApplyOnceAndAreIdempotent(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	first, err := chx.Migrate(ctx, conn, schemas.ClickHouseMigrations())
	if err != nil {
		t.Fatal(err)
	}
	all, _ := chx.LoadMigrations(schemas.ClickHouseMigrations())
	if len(first) != len(all) {
		t.Fatalf("first run applied %v, want all %d", first, len(all))
	}
	second, err := chx.Migrate(ctx, conn, schemas.ClickHouseMigrations())
	if err != nil || len(second) != 0 {
		t.Fatalf("second run applied %v (%v), want none", second, err)
	}
	for _, table := range []string{"events", "ingest_stats", "predictions", "drift_metrics", "model_performance"} {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s missing (%v)", table, err)
		}
	}
}

func TestChangedMigrationIsRefused(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	fsys := fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory;")}}
	if _, err := chx.Migrate(ctx, conn, fsys); err != nil {
		t.Fatal(err)
	}
	fsys["0001_a.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE IF NOT EXISTS a (x UInt16) ENGINE = Memory;")}
	_, err := chx.Migrate(ctx, conn, fsys)
	if err == nil || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Fatalf("want a changed-migration error, got %v", err)
	}
	fsys["0001_a.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory;")}
	fsys["0002_b.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE b (x UInt8) ENGINE = Memory;\nCREATE TABLE c (x UInt8) ENGINE = Memory;")}
	applied, err := chx.Migrate(ctx, conn, fsys)
	if err != nil || len(applied) != 1 || applied[0] != "0002_b.sql" {
		t.Fatalf("want only 0002 applied, got %v %v", applied, err)
	}
}

func TestInsertAndBatcher(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	if err := conn.Exec(ctx, "CREATE TABLE kv (k String, v Float64, at DateTime) ENGINE = MergeTree ORDER BY k"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := chx.Insert(ctx, conn, "kv", []string{"k", "v", "at"}, [][]any{{"a", 1.5, now}, {"b", 2.5, now}}); err != nil {
		t.Fatal(err)
	}
	b := chx.NewBatcher(conn, "kv", []string{"k", "v", "at"}, time.Hour, 1000, zap.NewNop())
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- b.Run(runCtx) }()
	for i := range 10 {
		b.Add("c", float64(i), now)
	}
	cancel() // shutdown flushes what is queued
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var n uint64
	var sum float64
	if err := conn.QueryRow(ctx, "SELECT count(), sum(v) FROM kv").Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 12 || sum != 49 {
		t.Fatalf("got %d rows summing %v, want 12 and 49", n, sum)
	}
}

func TestRollupSumsPerMinuteAndKeepsMaxima(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	if err := conn.Exec(ctx, `CREATE TABLE stats (minute DateTime, k String, n UInt64, newest Int64)
		ENGINE = SummingMergeTree((n)) ORDER BY (k, minute)`); err != nil {
		t.Fatal(err)
	}
	r := chx.NewRollup(conn, "stats", []string{"k"}, []string{"n"}, []string{"newest"}, time.Hour, zap.NewNop())
	r.Add([]string{"a"}, []uint64{2}, []int64{10})
	r.Add([]string{"a"}, []uint64{3}, []int64{7})
	r.Add([]string{"b"}, []uint64{1}, []int64{5})
	r.Flush(ctx)
	r.Add([]string{"a"}, []uint64{4}, []int64{1})
	r.Flush(ctx)
	var n uint64
	var newest int64
	if err := conn.QueryRow(ctx, "SELECT sum(n), max(newest) FROM stats WHERE k = 'a'").Scan(&n, &newest); err != nil {
		t.Fatal(err)
	}
	if n != 9 || newest != 10 {
		t.Fatalf("got sum %d max %d, want 9 and 10", n, newest)
	}
}

// A migration that adds a column is idempotent although 18.16 has no ADD COLUMN IF NOT
// EXISTS: re-running it after a crash between the statement and its record, or several
// services migrating at once, finds the column there and goes on.
func TestAddColumnMigrationRunsAgainAndConcurrently(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	base := fstest.MapFS{"0001_t.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = MergeTree ORDER BY x;")}}
	if _, err := chx.Migrate(ctx, conn, base); err != nil {
		t.Fatal(err)
	}
	// the crash: the column exists, the migration is not recorded
	if err := conn.Exec(ctx, "ALTER TABLE t ADD COLUMN y String DEFAULT ''"); err != nil {
		t.Fatal(err)
	}
	base["0002_y.sql"] = &fstest.MapFile{Data: []byte("ALTER TABLE t ADD COLUMN y String DEFAULT '';\nALTER TABLE t ADD COLUMN z UInt8 DEFAULT 0;")}
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := chx.Migrate(ctx, conn, base); errs <- err }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("re-run of an add-column migration: %v", err)
		}
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 't' AND name IN ('y', 'z')").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d of the columns y, z (%v)", n, err)
	}
	// a real error in an ALTER is still refused
	base["0003_bad.sql"] = &fstest.MapFile{Data: []byte("ALTER TABLE no_such_table ADD COLUMN y String DEFAULT '';")}
	if _, err := chx.Migrate(ctx, conn, base); err == nil {
		t.Fatal("an ALTER of a missing table was accepted")
	}
}
