// Package testenv connects tests to the real servers of the local stack (deploy/local) and
// gives each test its own topic names, consumer group, Redis key prefix and ClickHouse
// database, removed when the test ends. A missing server fails the test with the command
// that starts it; it never skips.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/natsx"
	"github.com/flywheel-ml/flywheel/platform/redisx"
)

const howToStart = "start the servers with `make test` (private stack on test ports), or `make stack-test-up` " +
	"and `set -a; . .flywheel/test-stack/env; set +a` before `go test`"

func env(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: %s", name, howToStart)
	}
	return v
}

func reachable(t testing.TB, what, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("%s is not reachable at %s (%v): %s", what, addr, err, howToStart)
	}
	_ = conn.Close()
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// Unique returns a name no other test run uses: prefix, the test's name and random hex.
func Unique(t testing.TB, prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	return prefix + "_" + name + "_" + hex.EncodeToString(b)
}

// Context is a context cancelled when the test ends, with a one-minute ceiling.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Kafka returns the dev broker's config with small batches for quick tests.
func Kafka(t testing.TB) kafkax.Config {
	t.Helper()
	brokers := env(t, "FLYWHEEL_KAFKA_BROKERS")
	reachable(t, "Kafka (dev broker)", strings.Split(brokers, ",")[0])
	return kafkax.Config{Brokers: strings.Split(brokers, ","), Partitions: 3, ReplicationFactor: 1,
		BatchSize: 100, BatchTimeout: 2 * time.Millisecond, DialTimeout: 5 * time.Second, MaxMessageBytes: 1 << 20}
}

// Redis returns a client and a key prefix of the test's own; keys under it are deleted at the end.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	addr := env(t, "FLYWHEEL_REDIS_ADDR")
	reachable(t, "Redis", addr)
	client, err := redisx.Open(Context(t), redisx.Config{Addr: addr, PoolSize: 16})
	if err != nil {
		t.Fatalf("redis: %v: %s", err, howToStart)
	}
	prefix := Unique(t, "t") + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		_ = client.Close()
	})
	return client, prefix
}

// RedisConfig returns the Redis config of the test stack.
func RedisConfig(t testing.TB) redisx.Config {
	t.Helper()
	addr := env(t, "FLYWHEEL_REDIS_ADDR")
	reachable(t, "Redis", addr)
	return redisx.Config{Addr: addr, PoolSize: 16}
}

// ClickHouseConfig returns a config naming a database of the test's own, dropped at the end.
func ClickHouseConfig(t testing.TB) chx.Config {
	t.Helper()
	addr := env(t, "FLYWHEEL_CLICKHOUSE_ADDR")
	reachable(t, "ClickHouse", addr)
	cfg := chx.Config{Addr: addr, Database: Unique(t, "t"), User: "default", DialTimeout: 5 * time.Second, MaxConns: 4}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := chx.DropDatabase(ctx, cfg); err != nil {
			t.Logf("drop database %s: %v", cfg.Database, err)
		}
	})
	return cfg
}

// ClickHouse opens a connection to a database of the test's own.
func ClickHouse(t testing.TB) (driver.Conn, chx.Config) {
	t.Helper()
	cfg := ClickHouseConfig(t)
	conn, err := chx.Open(Context(t), cfg)
	if err != nil {
		t.Fatalf("clickhouse: %v: %s", err, howToStart)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, cfg
}

// NATSConfig returns the NATS config of the test stack.
func NATSConfig(t testing.TB) natsx.Config {
	t.Helper()
	url := env(t, "FLYWHEEL_NATS_URL")
	reachable(t, "NATS", strings.TrimPrefix(url, "nats://"))
	return natsx.Config{URL: url}
}

// NATS connects to the test stack's NATS server with JetStream.
func NATS(t testing.TB) *natsx.Conn {
	t.Helper()
	conn, err := natsx.Connect(Context(t), NATSConfig(t), t.Name(), zap.NewNop())
	if err != nil {
		t.Fatalf("nats: %v: %s", err, howToStart)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Topics creates topics on the dev broker and deletes them when the test ends.
func Topics(t testing.TB, cfg kafkax.Config, topics ...string) {
	t.Helper()
	admin := kafkax.NewAdmin(cfg)
	if err := admin.EnsureTopics(Context(t), topics...); err != nil {
		t.Fatalf("create topics: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := admin.DeleteTopics(ctx, topics...); err != nil {
			t.Logf("delete topics: %v", err)
		}
		_ = admin.Close()
	})
}

// FreeAddr returns a loopback address with a port nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitReady polls baseURL/readyz until it answers 200, failing the test when done (the
// service's Run result) delivers first or 30 s pass.
func WaitReady(t testing.TB, baseURL string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(baseURL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			t.Fatalf("service at %s exited before it was ready: %v", baseURL, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("service at %s not ready after 30 s", baseURL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
