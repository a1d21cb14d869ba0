package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/logging"
	"github.com/flywheel-ml/flywheel/platform/redisx"
	"github.com/flywheel-ml/flywheel/platform/testenv"
)

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func waitStatus(t *testing.T, url string, want int, contains string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get(url)
		if code == want && strings.Contains(body, contains) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %s; want %d containing %q", url, code, body, want, contains)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// A service started before its dependency answers /healthz at once, reports on /readyz
// what it waits for, becomes ready by itself when the dependency comes, and goes unready
// and ready again around an outage — without exiting.
func TestServiceWaitsForItsDependencyInsteadOfExiting(t *testing.T) {
	redis := testenv.PrivateRedis(t)
	redis.Stop()
	addr := testenv.FreeAddr(t)
	base := "http://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			rt, err := app.New(ctx, "probe", &struct{}{}, httpx.Config{Addr: addr, MaxBodyBytes: 1 << 20, ShutdownTimeout: time.Second},
				httpx.AuthConfig{}, logging.Config{Level: "error", Format: "json"})
			if err != nil {
				return err
			}
			if _, err := rt.Redis(ctx, redisx.Config{Addr: redis.Addr(), PoolSize: 2}); err != nil {
				return err
			}
			return rt.Run(ctx)
		}()
	}()

	waitStatus(t, base+"/healthz", http.StatusOK, "ok")
	waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, "waiting for redis "+redis.Addr())
	// A route not registered yet is "come back shortly", never "does not exist".
	waitStatus(t, base+"/v1/things", http.StatusServiceUnavailable, `"code":"starting"`)
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("service exited while its dependency was down: %v", err)
	default:
	}

	redis.Start()
	waitStatus(t, base+"/readyz", http.StatusOK, `"status":"ready"`)
	waitStatus(t, base+"/v1/things", http.StatusNotFound, "")

	redis.Kill()
	waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, `"redis":"redis ping`)
	redis.Start()
	waitStatus(t, base+"/readyz", http.StatusOK, `"status":"ready"`)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("clean stop expected, got %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("service did not stop")
	}
}

// Stopping a service while it still waits for a dependency ends it promptly and frees its
// port.
func TestStopWhileWaitingForDependency(t *testing.T) {
	redis := testenv.PrivateRedis(t)
	redis.Stop()
	addr := testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		rt, err := app.New(ctx, "probe", &struct{}{}, httpx.Config{Addr: addr, MaxBodyBytes: 1 << 20, ShutdownTimeout: time.Second},
			httpx.AuthConfig{}, logging.Config{Level: "error", Format: "json"})
		if err == nil {
			_, err = rt.Redis(ctx, redisx.Config{Addr: redis.Addr(), PoolSize: 2})
		}
		done <- err
	}()
	waitStatus(t, "http://"+addr+"/readyz", http.StatusServiceUnavailable, "waiting for redis")
	cancel()
	select {
	case err := <-done:
		if err == nil || ctx.Err() == nil {
			t.Fatalf("want the start-up to end with the cancellation, got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("start-up did not end when asked to stop")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if code, _ := get("http://" + addr + "/healthz"); code == 0 {
			return // the listener is closed
		}
		if time.Now().After(deadline) {
			t.Fatal("HTTP server still answering after start-up was abandoned")
		}
		time.Sleep(25 * time.Millisecond)
	}
}
