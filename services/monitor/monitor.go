// Package monitor is the monitor service: it lands every logged prediction in ClickHouse and
// evaluates each served model version in event-time windows — data and prediction drift
// against the version's reference profile with calibrated thresholds, quality and concept
// drift from delayed labels, training-serving skew — writes the results for Grafana, and
// publishes drift events and alerts once per window (see README.md).
package monitor

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/logging"
	"github.com/flywheel-ml/flywheel/platform/retry"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/features"
	"github.com/flywheel-ml/flywheel/services/monitor/detect"
	"github.com/flywheel-ml/flywheel/services/monitor/dispatch"
	"github.com/flywheel-ml/flywheel/services/monitor/evaluate"
	"github.com/flywheel-ml/flywheel/services/monitor/gauges"
	"github.com/flywheel-ml/flywheel/services/monitor/httpapi"
	"github.com/flywheel-ml/flywheel/services/monitor/landing"
	"github.com/flywheel-ml/flywheel/services/monitor/reference"
	"github.com/flywheel-ml/flywheel/services/monitor/skew"
	"github.com/flywheel-ml/flywheel/services/monitor/source"
	"github.com/flywheel-ml/flywheel/services/monitor/store"
	"github.com/flywheel-ml/flywheel/services/registry/client"
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

// Run starts the service and blocks until ctx is cancelled and it has shut down.
func Run(ctx context.Context, cfg Config) error {
	rt, err := app.New(ctx, "monitor", &cfg, cfg.HTTP, cfg.Auth, cfg.Log)
	if err != nil {
		return err
	}
	s := cfg.Monitor
	labels, err := labelSpecs(s.ModelsDir)
	if err != nil {
		return retry.Permanent(err)
	}
	cat, err := features.LoadViews(s.ViewsDir)
	if err != nil {
		return retry.Permanent(err)
	}
	_, producer, err := rt.Kafka(ctx, cfg.Kafka, schemas.TopicPredictions, schemas.TopicDrift)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	conn, err := rt.ClickHouse(ctx, cfg.ClickHouse)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}

	lander := landing.New(conn, rt.Log.Named("landing"), rt.Registry)
	consumer, err := kafkax.NewConsumer(cfg.Kafka, kafkax.ConsumerConfig{GroupID: s.LandingGroup,
		Topics: []string{schemas.TopicPredictions}, BatchSize: 5000, FromLatest: s.LandingLatest}, lander.Handle, producer, rt.Log, rt.Registry)
	if err != nil {
		return retry.Permanent(err)
	}
	rt.Group.Go("predictions landing", consumer.Run)

	reg := client.New(s.RegistryURL, s.RegistryToken, "monitor", &http.Client{Timeout: time.Minute})
	results := store.New(conn, time.Now)
	evaluator := evaluate.New(evaluate.Config{Window: s.Window, Count: s.WindowCount, Grace: s.Grace, MinN: s.MinWindow, Lookback: s.Lookback,
		Persist: s.PersistK, Of: s.PersistN, Cooldown: s.Cooldown, PerfRecheck: s.PerfRecheck, MinLabels: s.MinLabels,
		LabelsFor: func(model string) (evaluate.Labels, bool) { l, ok := labels[model]; return l, ok }},
		source.New(conn), reference.NewLoader(reg), detect.New(detect.Options{Alpha: s.Alpha, Seed: 1}), gauges.Wrap(results, rt.Registry), time.Now, rt.Log.Named("evaluate"))
	rt.Group.Go("windows", func(ctx context.Context) error { return evaluator.Run(ctx, s.Tick) })
	dispatcher := dispatch.New(results, producer, dispatch.ParseWebhooks(s.Webhooks), rt.Log.Named("dispatch"), rt.Registry)
	rt.Group.Go("drift events", func(ctx context.Context) error { return dispatcher.Run(ctx, time.Second) })
	if s.SkewSample > 0 {
		checker := skew.New(conn, cat)
		rt.Group.Go("skew check", func(ctx context.Context) error {
			return skew.Run(ctx, checker, conn, s.Window, s.Grace, s.SkewSample, rt.Log.Named("skew"))
		})
	}
	httpapi.New(results).Register(rt.HTTP)
	rt.Log.Info("monitoring", zap.Duration("window", s.Window), zap.Int("models_with_labels", len(labels)),
		zap.Int("webhooks", len(dispatch.ParseWebhooks(s.Webhooks))))
	return rt.Run(ctx)
}

// labelSpecs reads where each model's labels come from.
func labelSpecs(dir string) (map[string]evaluate.Labels, error) {
	var fsys fs.FS = schemas.Models()
	if dir != "" {
		fsys = os.DirFS(dir)
	}
	specs, err := modelspec.Load(fsys)
	if err != nil {
		return nil, fmt.Errorf("load training specs: %w", err)
	}
	out := map[string]evaluate.Labels{}
	for name, sp := range specs {
		out[name] = evaluate.Labels{Stream: sp.Label.Stream, EventIDField: sp.Label.EventIDField, Field: sp.Label.Field,
			Horizon: time.Duration(sp.Label.Horizon)}
	}
	return out, nil
}
