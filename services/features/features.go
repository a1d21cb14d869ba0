// Package features is the features service: it computes windowed features from
// events.<stream> into the Redis online store and the ClickHouse offline store with one
// computation, and serves online lookups and point-in-time historical retrieval.
package features

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/logging"
	"github.com/flywheel-ml/flywheel/platform/redisx"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/features/httpapi"
	"github.com/flywheel-ml/flywheel/services/features/online"
	"github.com/flywheel-ml/flywheel/services/features/stream"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// Config is everything the service reads from FLYWHEEL_* variables and flags.
type Config struct {
	HTTP       httpx.Config `prefix:"FEATURES_" defaults:"ADDR=127.0.0.1:8082"`
	Auth       httpx.AuthConfig
	Log        logging.Config
	Kafka      kafkax.Config
	ClickHouse chx.Config
	Redis      redisx.Config
	Features   Settings `prefix:"FEATURES_"`
}

// Settings are the service's own knobs.
type Settings struct {
	ViewsDir    string `env:"VIEWS_DIR" usage:"directory of feature view *.yaml; empty uses the shipped views"`
	Group       string `env:"GROUP" default:"flywheel-features" usage:"consumer group of events.<stream>"`
	RedisPrefix string `env:"REDIS_PREFIX" default:"fw:f:" usage:"Redis key prefix of the online store"`
	Consume     bool   `env:"CONSUME" default:"true" usage:"consume events.<stream> (false: serve lookups only)"`
	BatchSize   int    `env:"BATCH_SIZE" default:"20000" usage:"events per processing batch (larger batches mean fewer, larger ClickHouse inserts)"`
	// How often feature_stats rows are written.
	StatsInterval time.Duration `env:"STATS_INTERVAL" default:"10s" usage:"how often statistics are written to ClickHouse"`
}

// Validate checks the settings.
func (s Settings) Validate() error {
	if s.Group == "" {
		return config.Invalid("GROUP", "a consumer group name is needed")
	}
	if s.BatchSize < 1 {
		return config.Invalid("BATCH_SIZE", "must be at least 1")
	}
	if s.StatsInterval < 100*time.Millisecond {
		return config.Invalid("STATS_INTERVAL", "must be at least 100ms")
	}
	return nil
}

// LoadViews returns the views in dir, or the shipped ones when dir is empty.
func LoadViews(dir string) (*views.Catalog, error) {
	var fsys fs.FS = schemas.FeatureViews()
	if dir != "" {
		fsys = os.DirFS(dir)
	}
	cat, err := views.Load(fsys)
	if err != nil {
		return nil, fmt.Errorf("load feature views: %w", err)
	}
	return cat, nil
}

// Run starts the service and blocks until ctx is cancelled and it has shut down.
func Run(ctx context.Context, cfg Config) error {
	rt, err := app.New(ctx, "features", &cfg, cfg.HTTP, cfg.Auth, cfg.Log)
	if err != nil {
		return err
	}
	cat, err := LoadViews(cfg.Features.ViewsDir)
	if err != nil {
		return err
	}
	conn, err := rt.ClickHouse(ctx, cfg.ClickHouse)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	redis, err := rt.Redis(ctx, cfg.Redis)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	store := online.New(redis, cfg.Features.RedisPrefix)
	stats := stream.NewStats(conn, cfg.Features.StatsInterval, rt.Log)
	rt.Group.Go("stats", stats.Run)
	proc, err := stream.New(cat, store, conn, stats, rt.Registry, rt.Log)
	if err != nil {
		return err
	}
	var topics []string
	for _, t := range proc.Topics() {
		s, _ := schemas.StreamOf(t)
		topics = append(topics, t, schemas.DLQTopic(s))
	}
	_, producer, err := rt.Kafka(ctx, cfg.Kafka, topics...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	reader := online.NewReader(store, cat)
	if cfg.Features.Consume {
		reader.CheckEpochs(proc)
	}
	httpapi.New(cat, reader, conn, proc, stats, time.Now).Register(rt.HTTP)
	if cfg.Features.Consume {
		// Only the consuming process checks and rebuilds: a lookup-only replica would race it.
		rt.HTTP.AddCheck("online_store", proc.OnlineCheck)
		rt.Group.Go("online store watch", proc.Watch)
	}
	if cfg.Features.Consume && len(proc.Topics()) > 0 {
		consumer, err := kafkax.NewConsumer(cfg.Kafka, kafkax.ConsumerConfig{GroupID: cfg.Features.Group, Topics: proc.Topics(),
			BatchSize: cfg.Features.BatchSize, BatchWait: 50 * time.Millisecond}, proc.Handle, producer, rt.Log, rt.Registry)
		if err != nil {
			return err
		}
		rt.Group.Go("stream", consumer.Run)
	}
	return rt.Run(ctx)
}
