package lifecycle_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/lifecycle"
)

func TestShutdownOrder(t *testing.T) {
	var events []string
	ch := make(chan string, 10)
	g := lifecycle.New(zap.NewNop(), time.Second)
	g.Defer("first-opened", func() error { events = append(events, "close first"); return nil })
	g.Defer("second-opened", func() error { events = append(events, "close second"); return nil })
	g.Go("worker", func(ctx context.Context) error {
		<-ctx.Done()
		ch <- "worker drained"
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}
	events = append([]string{<-ch}, events...)
	want := []string{"worker drained", "close second", "close first"}
	if !slices.Equal(events, want) {
		t.Fatalf("got %v, want %v", events, want)
	}
}

func TestShutdownTimeout(t *testing.T) {
	g := lifecycle.New(zap.NewNop(), 30*time.Millisecond)
	closed := false
	g.Defer("client", func() error { closed = true; return nil })
	g.Go("stuck", func(context.Context) error { time.Sleep(time.Second); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Run(ctx); !errors.Is(err, lifecycle.ErrShutdownTimeout) {
		t.Fatalf("want timeout, got %v", err)
	}
	if !closed {
		t.Fatal("closers must run even after a timeout")
	}
}
