// Package redisx connects to Redis with go-redis, retrying until the server answers.
package redisx

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flywheel-ml/flywheel/platform/config"
)

// Config is the Redis connection.
type Config struct {
	Addr     string `env:"REDIS_ADDR" default:"127.0.0.1:6379" usage:"Redis address"`
	Password string `env:"REDIS_PASSWORD" secret:"true"`
	DB       int    `env:"REDIS_DB" default:"0"`
	TLS      bool   `env:"REDIS_TLS"`
	PoolSize int    `env:"REDIS_POOL_SIZE" default:"32"`
}

// Validate checks the address and pool size.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return config.Invalid("REDIS_ADDR", "%q is not host:port", c.Addr)
	}
	if c.PoolSize < 1 {
		return config.Invalid("REDIS_POOL_SIZE", "must be at least 1, got %d", c.PoolSize)
	}
	return nil
}

// Open returns a client once Redis answers PING, retrying until ctx ends.
func Open(ctx context.Context, cfg Config) (*redis.Client, error) {
	opts := &redis.Options{Addr: cfg.Addr, Password: cfg.Password, DB: cfg.DB, PoolSize: cfg.PoolSize,
		DialTimeout: 3 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second}
	if cfg.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	client := redis.NewClient(opts)
	var err error
	for attempt := range 10 {
		if err = client.Ping(ctx).Err(); err == nil {
			return client, nil
		}
		select {
		case <-ctx.Done():
			_ = client.Close()
			return nil, fmt.Errorf("ping redis %s: %w", cfg.Addr, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	_ = client.Close()
	return nil, fmt.Errorf("ping redis %s: %w", cfg.Addr, err)
}

// Check returns a readiness probe for client.
func Check(client redis.UniversalClient) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := client.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis ping: %w", err)
		}
		return nil
	}
}
