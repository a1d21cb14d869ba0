// Package serving is the serving service. Serves the aliased model version with online features and logs every prediction.
package serving

import (
	"context"
	"fmt"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/logging"
	"github.com/flywheel-ml/flywheel/platform/natsx"
	"github.com/flywheel-ml/flywheel/platform/redisx"
)

// Config is everything the service reads from FLYWHEEL_* variables and flags.
type Config struct {
	HTTP  httpx.Config `prefix:"SERVING_" defaults:"ADDR=127.0.0.1:8084"`
	Auth  httpx.AuthConfig
	Log   logging.Config
	Kafka kafkax.Config
	Redis redisx.Config
	NATS  natsx.Config
}

// Run starts the service and blocks until ctx is cancelled and it has shut down.
func Run(ctx context.Context, cfg Config) error {
	rt, err := app.New(ctx, "serving", &cfg, cfg.HTTP, cfg.Auth, cfg.Log)
	if err != nil {
		return err
	}
	if _, _, err := rt.Kafka(ctx, cfg.Kafka); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if _, err := rt.Redis(ctx, cfg.Redis); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if _, err := rt.NATS(ctx, cfg.NATS, "flywheel-serving"); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	return rt.Run(ctx)
}
