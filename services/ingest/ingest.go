// Package ingest is the ingest service. Validates events from HTTP and raw.<stream> topics, dead-letters rejects and writes events.<stream> and the ClickHouse event log.
package ingest

import (
	"context"
	"fmt"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/logging"
	"github.com/flywheel-ml/flywheel/platform/redisx"
)

// Config is everything the service reads from FLYWHEEL_* variables and flags.
type Config struct {
	HTTP       httpx.Config `prefix:"INGEST_" defaults:"ADDR=127.0.0.1:8081"`
	Auth       httpx.AuthConfig
	Log        logging.Config
	Kafka      kafkax.Config
	ClickHouse chx.Config
	Redis      redisx.Config
}

// Run starts the service and blocks until ctx is cancelled and it has shut down.
func Run(ctx context.Context, cfg Config) error {
	rt, err := app.New("ingest", &cfg, cfg.HTTP, cfg.Auth, cfg.Log)
	if err != nil {
		return err
	}
	if _, _, err := rt.Kafka(ctx, cfg.Kafka); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if _, err := rt.ClickHouse(ctx, cfg.ClickHouse); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	if _, err := rt.Redis(ctx, cfg.Redis); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return rt.Run(ctx)
}
