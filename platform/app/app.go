// Package app is the composition-root scaffolding shared by every service: it loads config,
// builds the logger, metrics registry and HTTP server, and runs the service's tasks with an
// ordered, bounded shutdown.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/lifecycle"
	"github.com/flywheel-ml/flywheel/platform/logging"
)

// ShutdownTimeout bounds how long a service takes to stop after SIGTERM.
const ShutdownTimeout = 9500 * time.Millisecond

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
	if err := run(ctx); err != nil {
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
}

// New builds the runtime of the named service and logs its configuration with secrets masked.
func New(name string, cfg any, httpCfg httpx.Config, auth httpx.AuthConfig, logCfg logging.Config) (*Runtime, error) {
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
	return &Runtime{Log: log, Registry: reg, HTTP: srv, Group: lifecycle.New(log, ShutdownTimeout)}, nil
}

// Run serves HTTP and runs the registered tasks until ctx is cancelled or one fails.
func (rt *Runtime) Run(ctx context.Context) error {
	rt.Group.Go("http", rt.HTTP.Run)
	defer func() { _ = rt.Log.Sync() }()
	return rt.Group.Run(ctx)
}
