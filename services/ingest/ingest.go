// Package ingest is the ingest service: it validates events arriving over HTTP and on
// raw.<stream> topics against the stream catalog, dead-letters rejects with their reasons to
// dlq.<stream>, drops duplicate event ids, publishes the rest to events.<stream>, and writes
// the ClickHouse event log and per-minute statistics.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/logging"
	"github.com/flywheel-ml/flywheel/platform/redisx"
	"github.com/flywheel-ml/flywheel/platform/retry"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
	"github.com/flywheel-ml/flywheel/services/ingest/dedupe"
	"github.com/flywheel-ml/flywheel/services/ingest/deployments"
	"github.com/flywheel-ml/flywheel/services/ingest/eventlog"
	"github.com/flywheel-ml/flywheel/services/ingest/httpapi"
	"github.com/flywheel-ml/flywheel/services/ingest/pipeline"
	"github.com/flywheel-ml/flywheel/services/ingest/rawconsumer"
	"github.com/flywheel-ml/flywheel/services/ingest/stats"
	"github.com/flywheel-ml/flywheel/services/ingest/validate"
)

// Config is everything the service reads from FLYWHEEL_* variables and flags.
type Config struct {
	HTTP       httpx.Config `prefix:"INGEST_" defaults:"ADDR=127.0.0.1:8081"`
	Auth       httpx.AuthConfig
	Log        logging.Config
	Kafka      kafkax.Config
	ClickHouse chx.Config
	Redis      redisx.Config
	Ingest     Settings `prefix:"INGEST_"`
}

// Settings are ingest's own knobs.
type Settings struct {
	StreamsDir         string        `env:"STREAMS_DIR" usage:"directory of <stream>.json schemas; empty uses the shipped catalog"`
	MaxEvents          int           `env:"MAX_EVENTS" default:"10000" usage:"most events in one HTTP body or raw message"`
	MaxFutureSkew      time.Duration `env:"MAX_FUTURE_SKEW" default:"5m" usage:"event times further in the future are rejected"`
	MaxDepth           int           `env:"MAX_DEPTH" default:"32" usage:"deepest nesting of objects and arrays in an event"`
	DedupeHorizon      time.Duration `env:"DEDUPE_HORIZON" default:"24h" usage:"how long an event id is remembered"`
	RedisPrefix        string        `env:"REDIS_PREFIX" default:"fw:ingest:seen:" usage:"Redis key prefix of remembered event ids"`
	Group              string        `env:"GROUP" default:"flywheel-ingest" usage:"consumer group of raw.<stream>; the event log uses <group>-eventlog"`
	ConsumeRaw         bool          `env:"CONSUME_RAW" default:"true" usage:"consume raw.<stream> topics"`
	WriteEventLog      bool          `env:"WRITE_EVENT_LOG" default:"true" usage:"write events.<stream> to the ClickHouse events table"`
	ForceSchemaChanges bool          `env:"FORCE_SCHEMA_CHANGES" usage:"deploy backward-incompatible schema changes anyway"`
	StatsInterval      time.Duration `env:"STATS_INTERVAL" default:"10s" usage:"how often statistics are written to ClickHouse"`
}

// Validate checks the limits.
func (s Settings) Validate() error {
	switch {
	case s.MaxEvents < 1:
		return config.Invalid("MAX_EVENTS", "must be at least 1, got %d", s.MaxEvents)
	case s.MaxFutureSkew < 0:
		return config.Invalid("MAX_FUTURE_SKEW", "must not be negative")
	case s.DedupeHorizon < time.Minute:
		return config.Invalid("DEDUPE_HORIZON", "must be at least 1m, got %s", s.DedupeHorizon)
	case s.Group == "":
		return config.Invalid("GROUP", "a consumer group name is needed")
	case s.StatsInterval < 100*time.Millisecond:
		return config.Invalid("STATS_INTERVAL", "must be at least 100ms")
	}
	return nil
}

// LoadCatalog returns the catalog in dir, or the shipped one when dir is empty.
func LoadCatalog(dir string) (*catalog.Catalog, error) {
	var fsys fs.FS = schemas.Streams()
	if dir != "" {
		fsys = os.DirFS(dir)
	}
	cat, err := catalog.Load(fsys)
	if err != nil {
		return nil, fmt.Errorf("load stream catalog: %w", err)
	}
	return cat, nil
}

// Run starts the service and blocks until ctx is cancelled and it has shut down.
func Run(ctx context.Context, cfg Config) error {
	rt, err := app.New(ctx, "ingest", &cfg, cfg.HTTP, cfg.Auth, cfg.Log)
	if err != nil {
		return err
	}
	cat, err := LoadCatalog(cfg.Ingest.StreamsDir)
	if err != nil {
		return err
	}
	conn, err := rt.ClickHouse(ctx, cfg.ClickHouse)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	err = rt.Await(ctx, "stream schema deployment", func(ctx context.Context) error {
		findings, err := deployments.Deploy(ctx, conn, cat, cfg.Ingest.ForceSchemaChanges)
		for _, f := range findings {
			rt.Log.Info("stream schema", zap.String("stream", f.Stream), zap.Int("version", f.Version),
				zap.Int("deployed_version", f.DeployedVersion), zap.String("status", f.Status), zap.Strings("problems", f.Problems))
		}
		if errors.Is(err, deployments.ErrIncompatible) {
			return retry.Permanent(fmt.Errorf("set FLYWHEEL_INGEST_FORCE_SCHEMA_CHANGES=true to override: %w", err))
		}
		return err
	})
	if err != nil {
		return err
	}

	var rawTopics, eventTopics, all []string
	for _, name := range cat.Names() {
		rawTopics = append(rawTopics, schemas.RawTopic(name))
		eventTopics = append(eventTopics, schemas.EventsTopic(name))
		all = append(all, schemas.RawTopic(name), schemas.EventsTopic(name), schemas.DLQTopic(name))
	}
	_, producer, err := rt.Kafka(ctx, cfg.Kafka, all...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	redis, err := rt.Redis(ctx, cfg.Redis)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}

	recorder, err := stats.New(conn, cfg.Ingest.StatsInterval, rt.Registry, rt.Log)
	if err != nil {
		return err
	}
	rt.Group.Go("stats", recorder.Run)
	validator := validate.New(validate.Config{MaxFutureSkew: cfg.Ingest.MaxFutureSkew, MaxDepth: cfg.Ingest.MaxDepth}, time.Now)
	ingestor := pipeline.New(validator, dedupe.New(redis, cfg.Ingest.RedisPrefix, cfg.Ingest.DedupeHorizon), producer, recorder, time.Now, rt.Log).
		WithMessageLimit(producer.MaxMessageBytes())
	for _, s := range cat.Streams() {
		rt.Log.Info("event size limit", zap.String("stream", s.Name), zap.Int("max_event_bytes", ingestor.MaxEventBytes(s)),
			zap.Int("max_message_bytes", producer.MaxMessageBytes()))
	}
	httpapi.New(cat, ingestor, cfg.Ingest.MaxEvents).Register(rt.HTTP)

	if cfg.Ingest.ConsumeRaw {
		raw, err := kafkax.NewConsumer(cfg.Kafka, kafkax.ConsumerConfig{GroupID: cfg.Ingest.Group, Topics: rawTopics},
			rawconsumer.Handler(cat, ingestor, cfg.Ingest.MaxEvents), producer, rt.Log, rt.Registry)
		if err != nil {
			return err
		}
		rt.Group.Go("raw consumer", raw.Run)
	}
	if cfg.Ingest.WriteEventLog {
		log, err := kafkax.NewConsumer(cfg.Kafka, kafkax.ConsumerConfig{GroupID: cfg.Ingest.Group + "-eventlog", Topics: eventTopics,
			BatchSize: 5000, BatchWait: 200 * time.Millisecond}, eventlog.Handler(conn), producer, rt.Log, rt.Registry)
		if err != nil {
			return err
		}
		rt.Group.Go("event log", log.Run)
	}
	return rt.Run(ctx)
}
