// Package up runs every Flywheel service in one process, for local use and end-to-end tests.
package up

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/services/features"
	"github.com/flywheel-ml/flywheel/services/ingest"
	"github.com/flywheel-ml/flywheel/services/monitor"
	"github.com/flywheel-ml/flywheel/services/registry"
	"github.com/flywheel-ml/flywheel/services/serving"
	"github.com/flywheel-ml/flywheel/services/trainer"
)

// Service is one service's configured entry point.
type Service struct {
	Name string
	Run  func(ctx context.Context) error
}

// Services loads each service's configuration from the environment (lookup) and returns
// them in start order. Flags are not read: they would be ambiguous across services.
func Services(lookup config.LookupFunc, stderr io.Writer) ([]Service, error) {
	var (
		ic ingest.Config
		fc features.Config
		rc registry.Config
		sc serving.Config
		mc monitor.Config
		tc trainer.Config
	)
	svcs := []struct {
		name string
		cfg  any
		run  func(ctx context.Context) error
	}{
		{"ingest", &ic, func(ctx context.Context) error { return ingest.Run(ctx, ic) }},
		{"features", &fc, func(ctx context.Context) error { return features.Run(ctx, fc) }},
		{"registry", &rc, func(ctx context.Context) error { return registry.Run(ctx, rc) }},
		{"serving", &sc, func(ctx context.Context) error { return serving.Run(ctx, sc) }},
		{"monitor", &mc, func(ctx context.Context) error { return monitor.Run(ctx, mc) }},
		{"trainer", &tc, func(ctx context.Context) error { return trainer.Run(ctx, tc) }},
	}
	out := make([]Service, 0, len(svcs))
	for _, s := range svcs {
		if err := config.Load(s.cfg, nil, lookup, stderr); err != nil {
			return nil, fmt.Errorf("%s config: %w", s.name, err)
		}
		out = append(out, Service{Name: s.name, Run: s.run})
	}
	return out, nil
}

// Run runs the services until ctx is cancelled or one of them fails, which stops the others.
func Run(ctx context.Context, services []Service) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, s := range services {
		g.Go(func() error {
			if err := s.Run(ctx); err != nil {
				return fmt.Errorf("%s: %w", s.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}
