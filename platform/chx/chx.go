// Package chx connects to ClickHouse over the native protocol, applies the ordered
// migrations of schemas/clickhouse, and inserts rows in batches. Inserts always name their
// columns: ClickHouse 18.16 sees zero columns in a batch without the list (INFRA.md).
package chx

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flywheel-ml/flywheel/platform/config"
)

// Config is the ClickHouse connection.
type Config struct {
	Addr        string        `env:"CLICKHOUSE_ADDR" default:"127.0.0.1:9000" usage:"ClickHouse native protocol address"`
	Database    string        `env:"CLICKHOUSE_DATABASE" default:"flywheel" usage:"database holding Flywheel's tables"`
	User        string        `env:"CLICKHOUSE_USER" default:"default"`
	Password    string        `env:"CLICKHOUSE_PASSWORD" secret:"true"`
	TLS         bool          `env:"CLICKHOUSE_TLS" usage:"connect with TLS"`
	DialTimeout time.Duration `env:"CLICKHOUSE_DIAL_TIMEOUT" default:"5s"`
	MaxConns    int           `env:"CLICKHOUSE_MAX_CONNS" default:"8"`
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the address and database name.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return config.Invalid("CLICKHOUSE_ADDR", "%q is not host:port", c.Addr)
	}
	if !identifier.MatchString(c.Database) {
		return config.Invalid("CLICKHOUSE_DATABASE", "%q is not a plain identifier", c.Database)
	}
	if c.MaxConns < 1 {
		return config.Invalid("CLICKHOUSE_MAX_CONNS", "must be at least 1, got %d", c.MaxConns)
	}
	return nil
}

func (c Config) options(database string) *clickhouse.Options {
	opts := &clickhouse.Options{
		Addr:            []string{c.Addr},
		Auth:            clickhouse.Auth{Database: database, Username: c.User, Password: c.Password},
		DialTimeout:     c.DialTimeout,
		ReadTimeout:     5 * time.Minute,
		MaxOpenConns:    c.MaxConns,
		MaxIdleConns:    c.MaxConns,
		ConnMaxLifetime: time.Hour,
	}
	if c.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return opts
}

// Open connects to cfg.Database, creating it first when it does not exist, and retries until
// the server answers or ctx ends.
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	if err := attempts(ctx, func() error { return ensureDatabase(ctx, cfg) }); err != nil {
		return nil, fmt.Errorf("create database %s on %s: %w", cfg.Database, cfg.Addr, err)
	}
	conn, err := clickhouse.Open(cfg.options(cfg.Database))
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	if err := attempts(ctx, func() error { return conn.Ping(ctx) }); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

func ensureDatabase(ctx context.Context, cfg Config) error {
	conn, err := clickhouse.Open(cfg.options("default"))
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cfg.Database)
}

// DropDatabase removes a database; tests use it to clean up.
func DropDatabase(ctx context.Context, cfg Config) error {
	conn, err := clickhouse.Open(cfg.options("default"))
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
}

// Check returns a readiness probe for conn.
func Check(conn driver.Conn) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := conn.Ping(ctx); err != nil {
			return fmt.Errorf("clickhouse ping: %w", err)
		}
		return nil
	}
}

// Insert writes rows into table in one batch. Each row holds one value per column, in order.
func Insert(ctx context.Context, conn driver.Conn, table string, columns []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+strings.Join(columns, ", ")+")")
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", table, err)
	}
	for i, row := range rows {
		if err := batch.Append(row...); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("append row %d to %s: %w", i, table, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", len(rows), table, err)
	}
	return nil
}

func attempts(ctx context.Context, f func() error) error {
	var err error
	for attempt := range 10 {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return err
}
