// Package lifecycle runs a service's long-lived tasks together and shuts them down in order.
// A task that fails while the service runs is restarted after a bounded, jittered backoff —
// a broker restart or a ClickHouse outage is weathered, not fatal — unless its error is
// marked retry.Permanent (a configuration error), which stops the whole group. When the
// context is cancelled (SIGTERM) or a task fails permanently, every task is asked to stop,
// the group waits for them within a bounded time, and only then closes the clients the tasks
// used, last opened first.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/flywheel-ml/flywheel/platform/retry"
)

// ErrShutdownTimeout is returned when tasks did not stop within the shutdown timeout.
var ErrShutdownTimeout = errors.New("tasks did not stop within the shutdown timeout")

// Group is a set of tasks and closers. Registration is not safe for concurrent use and must
// happen before Run; Check is safe at any time.
type Group struct {
	log     *zap.Logger
	timeout time.Duration
	tasks   []task
	closers []task
	health  *health

	// Restart is the backoff between restarts of a failing task. A task that ran longer
	// than StableAfter before failing starts again from the first delay.
	Restart     retry.Backoff
	StableAfter time.Duration
}

type task struct {
	name string
	run  func(ctx context.Context) error
}

// New returns a group whose tasks must stop within timeout once asked.
func New(log *zap.Logger, timeout time.Duration) *Group {
	return &Group{log: log, timeout: timeout, health: newHealth(),
		Restart: retry.Backoff{Initial: 250 * time.Millisecond, Max: 15 * time.Second}, StableAfter: time.Minute}
}

// Go registers a task. It must return when ctx is cancelled, after draining its in-flight work.
// An error it returns while the group runs restarts it after a backoff (and /readyz reports
// the task failing until it has run for a few seconds again); an error marked
// retry.Permanent stops the whole group.
func (g *Group) Go(name string, run func(ctx context.Context) error) {
	g.tasks = append(g.tasks, task{name: name, run: run})
}

// Defer registers a closer, run after every task has returned, in reverse order.
func (g *Group) Defer(name string, closeFn func() error) {
	g.closers = append(g.closers, task{name: name, run: func(context.Context) error { return closeFn() }})
}

// Check is a readiness probe: it fails while any task is failing or waiting to restart.
func (g *Group) Check(context.Context) error { return g.health.err() }

// Run starts every task and blocks until they have all stopped and the closers ran. It
// returns the first permanent task error, or nil after a clean shutdown.
func (g *Group) Run(ctx context.Context) error {
	eg, egCtx := errgroup.WithContext(ctx)
	for _, t := range g.tasks {
		eg.Go(func() error { return g.supervise(egCtx, t) })
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

// supervise runs t until ctx ends, restarting it after failures that are not permanent.
func (g *Group) supervise(ctx context.Context, t task) error {
	log := g.log.With(zap.String("task", t.name))
	notify := retry.Logged(log, "task failed; restarting it")
	failures := 0
	for {
		started := time.Now()
		err := t.run(ctx)
		if ctx.Err() != nil {
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("task ended with an error while stopping", zap.String("error", err.Error()))
			}
			return nil
		}
		if err == nil {
			g.health.ok(t.name)
			return nil // a task may finish its work and end
		}
		if retry.IsPermanent(err) {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		if time.Since(started) > g.StableAfter {
			failures = 0
		}
		failures++
		wait := g.Restart.Delay(failures)
		g.health.failing(t.name, err)
		notify(failures, err, wait)
		if !retry.Sleep(ctx, wait) {
			return nil
		}
		g.health.restarted(t.name, g.recoveredAfter(wait))
	}
}

// recoveredAfter is how long a restarted task must keep running before it counts as
// healthy again: long enough that a task failing at once on every start stays unready.
func (g *Group) recoveredAfter(wait time.Duration) time.Duration {
	return min(max(wait, 2*time.Second), 10*time.Second)
}
