// Package trainer is the trainer service. Builds point-in-time datasets, trains, evaluates, registers and promotes through gates.
package trainer

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
	HTTP       httpx.Config `prefix:"TRAINER_" defaults:"ADDR=127.0.0.1:8086"`
	Auth       httpx.AuthConfig
	Log        logging.Config
	Kafka      kafkax.Config
	ClickHouse chx.Config
	NATS       natsx.Config
}

// Run starts the service and blocks until ctx is cancelled and it has shut down.
func Run(ctx context.Context, cfg Config) error {
	rt, err := app.New(ctx, "trainer", &cfg, cfg.HTTP, cfg.Auth, cfg.Log)
	if err != nil {
		return err
	}
	if _, _, err := rt.Kafka(ctx, cfg.Kafka); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if _, err := rt.ClickHouse(ctx, cfg.ClickHouse); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	if _, err := rt.NATS(ctx, cfg.NATS, "flywheel-trainer"); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	return rt.Run(ctx)
}
