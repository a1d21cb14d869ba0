package app

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/natsx"
	"github.com/flywheel-ml/flywheel/platform/redisx"
	"github.com/flywheel-ml/flywheel/schemas"
)

// The helpers below open one dependency each, waiting for it as long as it takes (see
// Await), add its readiness check to /readyz and register its close for after the tasks
// stopped, so every service wires them the same way. Once open, each client reconnects by
// itself after an outage; /readyz reports the dependency down meanwhile.

// ClickHouse opens the database, applies pending migrations and returns the connection.
func (rt *Runtime) ClickHouse(ctx context.Context, cfg chx.Config) (driver.Conn, error) {
	var conn driver.Conn
	err := rt.Await(ctx, "clickhouse "+cfg.Addr, func(ctx context.Context) error {
		c, err := chx.Open(ctx, cfg)
		if err != nil {
			return err
		}
		applied, err := chx.Migrate(ctx, c, schemas.ClickHouseMigrations())
		if err != nil {
			_ = c.Close()
			return fmt.Errorf("migrate clickhouse: %w", err)
		}
		if len(applied) > 0 {
			rt.Log.Info("applied clickhouse migrations", zap.Strings("migrations", applied))
		}
		conn = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	rt.HTTP.AddCheck("clickhouse", chx.Check(conn))
	rt.Group.Defer("clickhouse", conn.Close)
	return conn, nil
}

// Redis opens the Redis client.
func (rt *Runtime) Redis(ctx context.Context, cfg redisx.Config) (*redis.Client, error) {
	var client *redis.Client
	err := rt.Await(ctx, "redis "+cfg.Addr, func(ctx context.Context) (err error) {
		client, err = redisx.Open(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, err
	}
	rt.HTTP.AddCheck("redis", redisx.Check(client))
	rt.Group.Defer("redis", client.Close)
	return client, nil
}

// NATS connects to NATS with JetStream.
func (rt *Runtime) NATS(ctx context.Context, cfg natsx.Config, name string) (*natsx.Conn, error) {
	var conn *natsx.Conn
	err := rt.Await(ctx, "nats "+cfg.URL, func(ctx context.Context) (err error) {
		conn, err = natsx.Connect(ctx, cfg, name, rt.Log.Named("nats"))
		return err
	})
	if err != nil {
		return nil, err
	}
	rt.HTTP.AddCheck("nats", conn.Check)
	rt.Group.Defer("nats", conn.Close)
	return conn, nil
}

// Kafka returns the admin client (readiness, topic creation) and a producer, after creating
// topics that do not exist yet.
func (rt *Runtime) Kafka(ctx context.Context, cfg kafkax.Config, topics ...string) (*kafkax.Admin, *kafkax.Producer, error) {
	admin := kafkax.NewAdmin(cfg)
	err := rt.Await(ctx, fmt.Sprintf("kafka %v", cfg.Brokers), func(ctx context.Context) error {
		return admin.EnsureTopics(ctx, topics...)
	})
	if err != nil {
		_ = admin.Close()
		return nil, nil, err
	}
	if n, err := admin.MaxMessageBytes(ctx, ""); err != nil {
		rt.Log.Warn("the brokers did not say their message size limit; using FLYWHEEL_KAFKA_MAX_MESSAGE_BYTES",
			zap.Int("max_message_bytes", cfg.MaxMessageBytes), zap.String("error", err.Error()))
	} else if n > 0 {
		cfg.MaxMessageBytes = n
	}
	producer := kafkax.NewProducer(cfg)
	rt.HTTP.AddCheck("kafka", admin.Check)
	rt.Group.Defer("kafka admin", admin.Close)
	rt.Group.Defer("kafka producer", producer.Close)
	return admin, producer, nil
}
