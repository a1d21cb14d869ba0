// Package monitor is the monitor service. It lands every logged prediction in ClickHouse and
// watches predictions, features and labels for drift in streaming windows.
package monitor

import (
	"context"
	"fmt"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/logging"
	"github.com/flywheel-ml/flywheel/platform/retry"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/monitor/landing"
)

// Config is everything the service reads from FLYWHEEL_* variables and flags.
type Config struct {
	HTTP       httpx.Config `prefix:"MONITOR_" defaults:"ADDR=127.0.0.1:8085"`
	Auth       httpx.AuthConfig
	Log        logging.Config
	Kafka      kafkax.Config
	ClickHouse chx.Config
	Monitor    Settings `prefix:"MONITOR_"`
}

// Settings are the monitor's own knobs.
type Settings struct {
	LandingGroup string `env:"LANDING_GROUP" default:"flywheel-monitor-landing" usage:"consumer group that lands the predictions topic in ClickHouse"`
}

// Run starts the service and blocks until ctx is cancelled and it has shut down.
func Run(ctx context.Context, cfg Config) error {
	rt, err := app.New(ctx, "monitor", &cfg, cfg.HTTP, cfg.Auth, cfg.Log)
	if err != nil {
		return err
	}
	_, producer, err := rt.Kafka(ctx, cfg.Kafka, schemas.TopicPredictions)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	conn, err := rt.ClickHouse(ctx, cfg.ClickHouse)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	lander := landing.New(conn, rt.Log.Named("landing"), rt.Registry)
	consumer, err := kafkax.NewConsumer(cfg.Kafka, kafkax.ConsumerConfig{GroupID: cfg.Monitor.LandingGroup,
		Topics: []string{schemas.TopicPredictions}, BatchSize: 5000}, lander.Handle, producer, rt.Log, rt.Registry)
	if err != nil {
		return retry.Permanent(err)
	}
	rt.Group.Go("predictions landing", consumer.Run)
	return rt.Run(ctx)
}
