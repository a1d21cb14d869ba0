// Package registry is the registry service. Stores experiments, runs, models, versions, aliases and lineage (MLflow REST API).
package registry

import (
	"context"
	"fmt"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/logging"
	"github.com/flywheel-ml/flywheel/platform/natsx"
)

// Config is everything the service reads from FLYWHEEL_* variables and flags.
type Config struct {
	HTTP       httpx.Config `prefix:"REGISTRY_" defaults:"ADDR=127.0.0.1:8083"`
	Auth       httpx.AuthConfig
	Log        logging.Config
	Kafka      kafkax.Config
	ClickHouse chx.Config
	NATS       natsx.Config
}

// Run starts the service and blocks until ctx is cancelled and it has shut down.
func Run(ctx context.Context, cfg Config) error {
	rt, err := app.New("registry", &cfg, cfg.HTTP, cfg.Auth, cfg.Log)
	if err != nil {
		return err
	}
	if _, _, err := rt.Kafka(ctx, cfg.Kafka); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if _, err := rt.ClickHouse(ctx, cfg.ClickHouse); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	if _, err := rt.NATS(ctx, cfg.NATS, "flywheel-registry"); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	return rt.Run(ctx)
}
