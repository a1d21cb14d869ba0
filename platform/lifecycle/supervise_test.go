package lifecycle_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/lifecycle"
	"github.com/flywheel-ml/flywheel/platform/retry"
)

func TestFailingTaskIsRestartedAndReportedUnready(t *testing.T) {
	g := lifecycle.New(zap.NewNop(), time.Second)
	g.Restart = retry.Backoff{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}
	var runs atomic.Int32
	healthy := make(chan struct{})
	g.Go("flaky", func(ctx context.Context) error {
		if runs.Add(1) <= 3 {
			return errors.New("broker connection refused")
		}
		close(healthy)
		<-ctx.Done()
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()

	select {
	case <-healthy:
	case err := <-done:
		t.Fatalf("group ended after a transient failure: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("task was not restarted")
	}
	if err := g.Check(ctx); err == nil || !strings.Contains(err.Error(), "flaky: broker connection refused") {
		t.Fatalf("right after the restart the task should still be reported failing, got %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.Check(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("task still reported failing after it kept running: %v", g.Check(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("clean shutdown expected, got %v", err)
	}
	if runs.Load() != 4 {
		t.Fatalf("runs = %d, want 4", runs.Load())
	}
}

func TestPermanentFailureStopsOthers(t *testing.T) {
	g := lifecycle.New(zap.NewNop(), time.Second)
	boom := errors.New("bad configuration")
	g.Go("fails", func(context.Context) error { return retry.Permanent(boom) })
	g.Go("waits", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if err := g.Run(context.Background()); !errors.Is(err, boom) || !strings.Contains(err.Error(), "fails") {
		t.Fatalf("want the permanent error named after its task, got %v", err)
	}
}

func TestShutdownDuringRestartBackoff(t *testing.T) {
	g := lifecycle.New(zap.NewNop(), time.Second)
	g.Restart = retry.Backoff{Initial: time.Hour}
	failed := make(chan struct{}, 1)
	g.Go("down", func(context.Context) error {
		select {
		case failed <- struct{}{}:
		default:
		}
		return errors.New("down")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	<-failed
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("want a clean stop, got %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("shutdown waited for the restart backoff")
	}
}
