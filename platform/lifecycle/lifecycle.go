// Package lifecycle runs a service's long-lived tasks together and shuts them down in order:
// when the context is cancelled (SIGTERM) or a task fails, every task is asked to stop, the
// group waits for them within a bounded time, and only then closes the clients the tasks
// used, last opened first.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// ErrShutdownTimeout is returned when tasks did not stop within the shutdown timeout.
var ErrShutdownTimeout = errors.New("tasks did not stop within the shutdown timeout")

// Group is a set of tasks and closers. It is not safe for concurrent registration.
type Group struct {
	log     *zap.Logger
	timeout time.Duration
	tasks   []task
	closers []task
}

type task struct {
	name string
	run  func(ctx context.Context) error
}

// New returns a group whose tasks must stop within timeout once asked.
func New(log *zap.Logger, timeout time.Duration) *Group {
	return &Group{log: log, timeout: timeout}
}

// Go registers a task. It must return when ctx is cancelled, after draining its in-flight work;
// returning an error stops the whole group.
func (g *Group) Go(name string, run func(ctx context.Context) error) {
	g.tasks = append(g.tasks, task{name: name, run: run})
}

// Defer registers a closer, run after every task has returned, in reverse order.
func (g *Group) Defer(name string, closeFn func() error) {
	g.closers = append(g.closers, task{name: name, run: func(context.Context) error { return closeFn() }})
}

// Run starts every task and blocks until they have all stopped and the closers ran. It
// returns the first task error, or nil after a clean shutdown.
func (g *Group) Run(ctx context.Context) error {
	eg, egCtx := errgroup.WithContext(ctx)
	for _, t := range g.tasks {
		eg.Go(func() error {
			if err := t.run(egCtx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			return nil
		})
	}
	done := make(chan error, 1)
	go func() { done <- eg.Wait() }()

	var err error
	select {
	case err = <-done:
	case <-egCtx.Done():
		g.log.Info("shutting down", zap.Duration("timeout", g.timeout))
		select {
		case err = <-done:
		case <-time.After(g.timeout):
			err = ErrShutdownTimeout
		}
	}
	for i := len(g.closers) - 1; i >= 0; i-- {
		c := g.closers[i]
		if cerr := c.run(context.Background()); cerr != nil {
			g.log.Warn("close failed", zap.String("component", c.name), zap.Error(cerr))
		}
	}
	if err != nil {
		return err
	}
	g.log.Info("stopped cleanly")
	return nil
}
