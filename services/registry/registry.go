// Package registry is the registry service: MLflow-compatible experiments, runs, registered
// models, versions and aliases on NATS JetStream, artifacts in the JetStream object store,
// metric history and runs search in ClickHouse, lineage and audited promotions.
package registry

import (
	"context"
	"fmt"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/logging"
	"github.com/flywheel-ml/flywheel/platform/natsx"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/registry/artifacts"
	"github.com/flywheel-ml/flywheel/services/registry/events"
	"github.com/flywheel-ml/flywheel/services/registry/httpapi"
	"github.com/flywheel-ml/flywheel/services/registry/runindex"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

// Config is everything the service reads from FLYWHEEL_* variables and flags.
type Config struct {
	HTTP       httpx.Config `prefix:"REGISTRY_" defaults:"ADDR=127.0.0.1:8083"`
	Auth       httpx.AuthConfig
	Log        logging.Config
	Kafka      kafkax.Config
	ClickHouse chx.Config
	NATS       natsx.Config
	Registry   Settings `prefix:"REGISTRY_"`
}

// Settings are the registry's own.
type Settings struct {
	Prefix           string `env:"PREFIX" usage:"prefix of the registry's JetStream buckets, streams and subjects (one registry deployment per prefix)"`
	MaxArtifactBytes int64  `env:"MAX_ARTIFACT_BYTES" default:"1073741824" usage:"largest artifact accepted"`
}

// Validate checks the settings.
func (s Settings) Validate() error {
	if s.MaxArtifactBytes <= 0 {
		return config.Invalid("MAX_ARTIFACT_BYTES", "must be positive, got %d", s.MaxArtifactBytes)
	}
	return nil
}

// Run starts the service and blocks until ctx is cancelled and it has shut down.
func Run(ctx context.Context, cfg Config) error {
	rt, err := app.New(ctx, "registry", &cfg, cfg.HTTP, cfg.Auth, cfg.Log)
	if err != nil {
		return err
	}
	_, producer, err := rt.Kafka(ctx, cfg.Kafka, schemas.TopicRegistry)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	conn, err := rt.ClickHouse(ctx, cfg.ClickHouse)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	nc, err := rt.NATS(ctx, cfg.NATS, "flywheel-registry")
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	prefix := cfg.Registry.Prefix
	var (
		outbox *events.Outbox
		relay  *events.Relay
		st     *store.Store
	)
	if err := rt.Await(ctx, "registry store buckets", func(ctx context.Context) (err error) {
		if outbox == nil {
			if outbox, err = events.OpenOutbox(ctx, nc.JS, prefix, rt.Log.Named("events"), rt.Registry); err != nil {
				return err
			}
		}
		if relay == nil {
			if relay, err = events.NewRelay(ctx, nc.JS, nc.NC, producer, events.RelayConfig{Prefix: prefix}, rt.Log.Named("relay"), rt.Registry); err != nil {
				return err
			}
		}
		st, err = store.Open(ctx, nc.JS, prefix, store.WithNotifier(outbox))
		return err
	}); err != nil {
		return err
	}
	var arts *artifacts.Store
	if err := rt.Await(ctx, "artifact store", func(ctx context.Context) (err error) {
		arts, err = artifacts.Open(ctx, nc.JS, prefix+"ARTIFACTS", artifacts.Limits{MaxObjectBytes: cfg.Registry.MaxArtifactBytes})
		return err
	}); err != nil {
		return err
	}
	runs := runindex.NewRuns(st.RunsKV(), conn, rt.Log.Named("runindex"))
	metrics := runindex.NewMetrics(nc.JS, st.MetricsStream(), prefix+"registry-metric-history", conn, rt.Log.Named("metrics"))
	aliases := runindex.NewAliases(nc.JS, st.AliasAuditStream(), conn, rt.Log.Named("aliashistory"))
	rt.Group.Go("events relay", relay.Run)
	rt.Group.Go("runs index", runs.Run)
	rt.Group.Go("metric history", metrics.Run)
	rt.Group.Go("alias history", aliases.Run)

	api := httpapi.New(st, runs, metrics, conn, rt.Log, cfg.HTTP.MaxBodyBytes)
	api.Register(rt.HTTP)
	for _, route := range artifacts.Routes(arts, rt.Log) {
		// Artifacts stream past the JSON body limit (Put enforces MaxArtifactBytes itself)
		// and answer auth errors in MLflow's shape.
		rt.HTTP.HandleRaw(route.Pattern, api.Authorized(route.Scope, route.Handler))
	}
	return rt.Run(ctx)
}
