// Package natsx connects to NATS with JetStream, reconnecting forever once connected.
package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/config"
)

// Config is the NATS connection.
type Config struct {
	URL       string `env:"NATS_URL" default:"nats://127.0.0.1:4222" usage:"NATS server URL(s), comma-separated"`
	Token     string `env:"NATS_TOKEN" secret:"true" usage:"NATS auth token"`
	CredsFile string `env:"NATS_CREDS" usage:"path to a NATS .creds file"`
}

// Validate checks the URL is present.
func (c Config) Validate() error {
	if c.URL == "" {
		return config.Invalid("NATS_URL", "a server URL is needed, e.g. nats://127.0.0.1:4222")
	}
	return nil
}

// Conn is a NATS connection with its JetStream context.
type Conn struct {
	NC *nats.Conn
	JS jetstream.JetStream
}

// Connect dials NATS, retrying until ctx ends, and checks JetStream is enabled.
func Connect(ctx context.Context, cfg Config, name string, log *zap.Logger) (*Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", zap.String("url", nc.ConnectedUrl())) }),
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	var nc *nats.Conn
	var err error
	for attempt := range 10 {
		if nc, err = nats.Connect(cfg.URL, opts...); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to nats %s: %w", cfg.URL, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", cfg.URL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c := &Conn{NC: nc, JS: js}
	if err := c.Check(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// Check is a readiness probe: connected, and JetStream answers.
func (c *Conn) Check(ctx context.Context) error {
	if !c.NC.IsConnected() {
		return errors.New("nats not connected")
	}
	if _, err := c.JS.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream account info (is JetStream enabled?): %w", err)
	}
	return nil
}

// Close drains the connection so pending publishes are flushed.
func (c *Conn) Close() error {
	return c.NC.Drain()
}
