// Package trainer is the trainer service: it retrains models on drift events, schedules and
// requests from leakage-free point-in-time datasets, evaluates them against the champion,
// registers them with lineage and promotes them through gates (see README.md).
package trainer

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
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/logging"
	"github.com/flywheel-ml/flywheel/platform/retry"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/features/views"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
	"github.com/flywheel-ml/flywheel/services/trainer/httpapi"
	"github.com/flywheel-ml/flywheel/services/trainer/learner"
	"github.com/flywheel-ml/flywheel/services/trainer/pipeline"
	"github.com/flywheel-ml/flywheel/services/trainer/runs"
	"github.com/flywheel-ml/flywheel/services/trainer/triggers"
)

// Config is everything the service reads from FLYWHEEL_* variables and flags.
type Config struct {
	HTTP       httpx.Config `prefix:"TRAINER_" defaults:"ADDR=127.0.0.1:8086"`
	Auth       httpx.AuthConfig
	Log        logging.Config
	Kafka      kafkax.Config
	ClickHouse chx.Config
	Trainer    Settings `prefix:"TRAINER_"`
}

// Settings are the trainer's own knobs.
type Settings struct {
	ModelsDir     string `env:"MODELS_DIR" usage:"directory of <model>.yaml training specs; empty uses the shipped ones"`
	ViewsDir      string `env:"VIEWS_DIR" usage:"directory of feature view *.yaml; empty uses the shipped views"`
	RegistryURL   string `env:"REGISTRY_URL" default:"http://127.0.0.1:8083" usage:"the registry's base URL"`
	RegistryToken string `env:"REGISTRY_TOKEN" secret:"true" usage:"bearer token for the registry (write and promote scopes)"`
	Group         string `env:"GROUP" default:"flywheel-trainer" usage:"consumer group of the drift topic"`
	KeepRuns      int    `env:"KEEP_RUNS" default:"1000" usage:"ended runs remembered for GET /v1/train/runs/{id} and drift idempotency"`
}

// Validate checks the settings.
func (s Settings) Validate() error {
	if s.Group == "" {
		return config.Invalid("GROUP", "a consumer group name is needed")
	}
	if s.RegistryURL == "" {
		return config.Invalid("REGISTRY_URL", "the registry's base URL is needed, e.g. http://127.0.0.1:8083")
	}
	return nil
}

// LoadSpecs reads the training specs and checks every feature they name exists.
func LoadSpecs(modelsDir string, cat *views.Catalog) (map[string]*modelspec.Spec, error) {
	var fsys fs.FS = schemas.Models()
	if modelsDir != "" {
		fsys = os.DirFS(modelsDir)
	}
	specs, err := modelspec.Load(fsys)
	if err != nil {
		return nil, fmt.Errorf("load training specs: %w", err)
	}
	for _, s := range specs {
		for i, ref := range s.FeatureRefs() {
			v, ok := cat.Get(ref.View)
			if !ok {
				return nil, fmt.Errorf("%s.yaml: features[%d]: no feature view %q", s.Name, i, ref.View)
			}
			if _, ok := v.Feature(ref.Feature); !ok {
				return nil, fmt.Errorf("%s.yaml: features[%d]: view %s has no feature %q", s.Name, i, ref.View, ref.Feature)
			}
		}
	}
	return specs, nil
}

// Run starts the service and blocks until ctx is cancelled and it has shut down.
func Run(ctx context.Context, cfg Config) error {
	rt, err := app.New(ctx, "trainer", &cfg, cfg.HTTP, cfg.Auth, cfg.Log)
	if err != nil {
		return err
	}
	var viewsFS fs.FS = schemas.FeatureViews()
	if cfg.Trainer.ViewsDir != "" {
		viewsFS = os.DirFS(cfg.Trainer.ViewsDir)
	}
	cat, err := views.Load(viewsFS)
	if err != nil {
		return retry.Permanent(fmt.Errorf("load feature views: %w", err))
	}
	specs, err := LoadSpecs(cfg.Trainer.ModelsDir, cat)
	if err != nil {
		return retry.Permanent(err)
	}
	conn, err := rt.ClickHouse(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	_, producer, err := rt.Kafka(ctx, cfg.Kafka, schemas.TopicDrift)
	if err != nil {
		return err
	}
	reg := client.New(cfg.Trainer.RegistryURL, cfg.Trainer.RegistryToken, "trainer", &http.Client{Timeout: 2 * time.Minute})
	rt.HTTP.AddCheck("registry", func(ctx context.Context) error {
		_, err := reg.Aliases(ctx, "flywheel-readiness-probe")
		return err
	})

	cooldowns, schedules := map[string]time.Duration{}, map[string]time.Duration{}
	for name, s := range specs {
		cooldowns[name], schedules[name] = time.Duration(s.Cooldown), time.Duration(s.Schedule)
	}
	book := runs.NewBook(cooldowns, cfg.Trainer.KeepRuns, time.Now)
	pipe := pipeline.New(pipeline.Deps{Specs: specs, Events: dataset.EventLog{Conn: conn}, Features: dataset.NewStoreSource(conn, cat),
		Registry: reg, Learner: learner.Learner{}, Evaluate: learner.Evaluate, Book: book, CodeVersion: app.Version(), Log: rt.Log})
	// Runs outlive the request that started them but not the service: they stop with it.
	runCtx, stopRuns := context.WithCancel(context.WithoutCancel(ctx))
	intake := triggers.New(runCtx, book, pipe, rt.Log, rt.Registry)
	// A drift event folded into a run is done only once the run's registry record says so.
	intake.OnFolded(func(ctx context.Context, run *runs.Run) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return pipe.RecordCoalesced(ctx, run.ID)
	})
	rt.Group.Defer("training runs", func() error { stopRuns(); intake.Wait(); return nil })
	httpapi.New(intake, book, pipe).Register(rt.HTTP)

	// Before consuming drift events: remember the drift runs of earlier processes.
	err = rt.Await(ctx, "the registry's record of past drift runs", func(ctx context.Context) error {
		past, err := PastDriftRuns(ctx, reg, specs, time.Now())
		if err != nil {
			return err
		}
		book.Restore(past)
		rt.Log.Info("past drift runs restored", zap.Int("runs", len(past)))
		return nil
	})
	if err != nil {
		return err
	}
	drift, err := kafkax.NewConsumer(cfg.Kafka, kafkax.ConsumerConfig{GroupID: cfg.Trainer.Group, Topics: []string{schemas.TopicDrift}},
		intake.DriftHandler(), producer, rt.Log, rt.Registry)
	if err != nil {
		return retry.Permanent(err)
	}
	rt.Group.Go("drift consumer", drift.Run)
	rt.Group.Go("schedule", func(ctx context.Context) error { return intake.Schedule(ctx, schedules) })
	rt.Log.Info("training specs loaded", zap.Int("models", len(specs)))
	return rt.Run(ctx)
}
