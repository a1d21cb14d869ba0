package serving_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/services/serving"
	"github.com/flywheel-ml/flywheel/services/serving/internal/testmodel"
)

// startFromCache runs serving with a model only in its local cache: the registry and NATS
// are addresses nothing listens on.
func startFromCache(t *testing.T, redisAddr string, extra map[string]string) string {
	t.Helper()
	cache := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cache, "fraud"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(cache, "fraud", "v7.flywheel"), testmodel.Encoded(-1), 0o644)
	_ = os.WriteFile(filepath.Join(cache, "fraud", "aliases.json"), []byte(`{"champion":7}`), 0o644)
	addr := testenv.FreeAddr(t)
	vars := map[string]string{"FLYWHEEL_SERVING_ADDR": addr, "FLYWHEEL_SERVING_CACHE_DIR": cache,
		"FLYWHEEL_SERVING_REGISTRY_URL": "http://" + testenv.FreeAddr(t), "FLYWHEEL_NATS_URL": "nats://" + testenv.FreeAddr(t),
		"FLYWHEEL_REDIS_ADDR": redisAddr, "FLYWHEEL_SERVING_REDIS_PREFIX": testenv.Unique(t, "s") + ":",
		"FLYWHEEL_SERVING_TIMEOUT": "300ms", "FLYWHEEL_SERVING_GRPC_ADDR": "", "FLYWHEEL_LOG_LEVEL": "error"}
	for k, v := range extra {
		vars[k] = v
	}
	var cfg serving.Config
	if err := config.Load(&cfg, nil, func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serving.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serving stopped with %v", err)
		}
	})
	url := "http://" + addr
	testenv.WaitReady(t, url, done)
	return url
}

func predictOnce(t *testing.T, url string) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := http.Post(url+"/v1/models/fraud:predict", "application/json",
		strings.NewReader(`{"instances":[{"card_id":"c1","amount":12,"channel":"web"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), time.Since(start)
}

func TestServesFromCacheAndAnswers503WhileRedisIsDown(t *testing.T) {
	redis := testenv.PrivateRedis(t)
	url := startFromCache(t, redis.Addr(), nil)
	status, body, _ := predictOnce(t, url)
	var out struct {
		Version int `json:"version"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &out) != nil || out.Version != 7 {
		t.Fatalf("from the cache with the registry unreachable: %d %s", status, body)
	}
	redis.Kill()
	status, body, took := predictOnce(t, url)
	if status != 503 || !strings.Contains(body, "feature_store_unavailable") && !strings.Contains(body, "deadline_exceeded") {
		t.Fatalf("Redis down: %d %s, want a 503 that says so", status, body)
	}
	if took > 2*time.Second {
		t.Fatalf("Redis down: answered after %v, want within the 300ms deadline (plus slack)", took)
	}
	redis.Start()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if status, _, _ = predictOnce(t, url); status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d 15 s after Redis came back", status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDeclaredDefaultsWhenAllowedAndRedisIsDown(t *testing.T) {
	redis := testenv.PrivateRedis(t)
	url := startFromCache(t, redis.Addr(), map[string]string{"FLYWHEEL_SERVING_ALLOW_DEFAULTS": "fraud"})
	redis.Kill()
	if status, body, _ := predictOnce(t, url); status != 200 {
		t.Fatalf("Redis down with defaults allowed: %d %s", status, body)
	}
}
