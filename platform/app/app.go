// Package app is the composition-root scaffolding shared by every service: it loads config,
// builds the logger, metrics registry and HTTP server, and runs the service's tasks with an
// ordered, bounded shutdown.
//
// The HTTP server listens from the start, so /healthz answers at once and /readyz says what
// start-up is waiting for. Dependencies are opened with retries that last until they answer
// or the service is stopped: a service started before its broker, Redis, NATS or ClickHouse
// waits for them instead of exiting. Only configuration errors end a service on their own.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/lifecycle"
	"github.com/flywheel-ml/flywheel/platform/logging"
	"github.com/flywheel-ml/flywheel/platform/retry"
)

// ShutdownTimeout bounds how long a service takes to stop after SIGTERM.
const ShutdownTimeout = 9500 * time.Millisecond

// StartupBackoff paces the retries of dependencies that are down at start-up.
var StartupBackoff = retry.Backoff{Initial: 200 * time.Millisecond, Max: 5 * time.Second}

// Main is the whole body of a service's main: it loads cfg from the environment and flags,
// cancels the context on SIGINT/SIGTERM and exits non-zero when run fails.
func Main(cfg any, run func(ctx context.Context) error) {
	if err := config.Load(cfg, os.Args[1:], os.LookupEnv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "configuration error:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "fatal:", err)
		stop()
		os.Exit(1)
	}
}

// Runtime is what every service builds first.
type Runtime struct {
	Log      *zap.Logger
	Registry *prometheus.Registry
	HTTP     *httpx.Server
	Group    *lifecycle.Group

	serveErr  chan error
	stopServe context.CancelFunc

	mu      sync.Mutex
	waiting string // what start-up waits for; "" once started
	started bool
}

// New builds the runtime of the named service, logs its configuration with secrets masked
// and starts serving HTTP: /healthz at once, /readyz 503 until Run. The server stops when
// ctx ends or, once Run was called, with the service's other tasks.
func New(ctx context.Context, name string, cfg any, httpCfg httpx.Config, auth httpx.AuthConfig, logCfg logging.Config) (*Runtime, error) {
	log, err := logging.New(name, logCfg)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := httpx.NewServer(httpCfg, auth, log, reg)
	if err != nil {
		return nil, err
	}
	log.Info("starting", zap.Strings("config", config.Describe(cfg)))
	ln, err := net.Listen("tcp", httpCfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (is another process using it? set FLYWHEEL_%s_ADDR): %w", httpCfg.Addr, envName(name), err)
	}
	rt := &Runtime{Log: log, Registry: reg, HTTP: srv, Group: lifecycle.New(log, ShutdownTimeout),
		serveErr: make(chan error, 1), waiting: "starting"}
	serveCtx, stopServe := context.WithCancel(context.WithoutCancel(ctx))
	rt.stopServe = stopServe
	context.AfterFunc(ctx, func() {
		if !rt.isStarted() {
			stopServe() // start-up was abandoned; Run will not stop the server
		}
	})
	srv.SetStarting(true)
	go func() { rt.serveErr <- srv.Serve(serveCtx, ln) }()
	srv.AddCheck("startup", rt.startupCheck)
	srv.AddCheck("tasks", rt.Group.Check)
	return rt, nil
}

func envName(service string) string {
	b := []byte(service)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func (rt *Runtime) isStarted() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.started
}

func (rt *Runtime) startupCheck(context.Context) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.started {
		return nil
	}
	return errors.New("start-up: " + rt.waiting)
}

func (rt *Runtime) setWaiting(what string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.waiting = what
}

// Await runs a start-up step that needs a dependency (connecting, migrating, creating
// topics), retrying it with backoff until it succeeds, fails permanently (an error marked
// retry.Permanent), or ctx ends. /readyz names the step while it waits.
func (rt *Runtime) Await(ctx context.Context, what string, step func(ctx context.Context) error) error {
	rt.setWaiting("waiting for " + what)
	notify := retry.Logged(rt.Log, "start-up waits for a dependency", zap.String("step", what))
	err := retry.Do(ctx, StartupBackoff, step, func(attempt int, err error, wait time.Duration) {
		rt.setWaiting(fmt.Sprintf("waiting for %s: %v", what, err))
		notify(attempt, err, wait)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	rt.setWaiting("starting")
	return nil
}

// Run runs the registered tasks with the HTTP server until ctx is cancelled or a task fails
// permanently; /readyz reports ready from now on when every check passes.
func (rt *Runtime) Run(ctx context.Context) error {
	rt.mu.Lock()
	rt.started = true
	rt.mu.Unlock()
	rt.HTTP.SetStarting(false)
	rt.Group.Go("http", func(ctx context.Context) error {
		select {
		case err := <-rt.serveErr:
			return retry.Permanent(err)
		case <-ctx.Done():
			rt.stopServe()
			return <-rt.serveErr
		}
	})
	defer func() { _ = rt.Log.Sync() }()
	if ctx.Err() != nil {
		rt.stopServe()
	}
	return rt.Group.Run(ctx)
}
