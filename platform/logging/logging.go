// Package logging builds the zap logger every Flywheel service logs JSON with.
package logging

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/flywheel-ml/flywheel/platform/config"
)

// Config selects the log level and format.
type Config struct {
	Level  string `env:"LOG_LEVEL" default:"info" usage:"debug, info, warn or error"`
	Format string `env:"LOG_FORMAT" default:"json" usage:"json, or console for humans"`
}

// Validate checks the level and format names.
func (c Config) Validate() error {
	if _, err := zapcore.ParseLevel(c.Level); err != nil {
		return config.Invalid("LOG_LEVEL", "%q is not a level; use debug, info, warn or error", c.Level)
	}
	if c.Format != "json" && c.Format != "console" {
		return config.Invalid("LOG_FORMAT", "%q is not a format; use json or console", c.Format)
	}
	return nil
}

// New returns a logger named after the service, writing to stderr.
func New(service string, c Config) (*zap.Logger, error) {
	return newLogger(service, c)
}

func newLogger(service string, c Config, opts ...zap.Option) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("parse log level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.Encoding = c.Format
	zc.EncoderConfig.TimeKey = "ts"
	zc.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	zc.Sampling = nil
	if c.Format == "console" {
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
	}
	log, err := build(zc, opts...)
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return log.With(zap.String("service", service)), nil
}

// build builds zc with stack traces only at DPanic and above. zap's production config adds
// one to every error line; an error line (a failed request, a dependency down) says what
// failed without one, and panics are logged with their stack explicitly (httpx's recovery).
func build(zc zap.Config, opts ...zap.Option) (*zap.Logger, error) {
	zc.DisableStacktrace = true // Build would otherwise add AddStacktrace(ErrorLevel)
	return zc.Build(append([]zap.Option{zap.AddStacktrace(zapcore.DPanicLevel)}, opts...)...)
}
