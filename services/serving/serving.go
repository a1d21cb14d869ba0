// Package serving is the serving service: it serves the registry's champion (and challenger)
// of each model inside the process that reads the online features, over its own API and the
// Open Inference Protocol (REST and gRPC), hot-swaps versions when their aliases move, and
// logs every prediction to the predictions topic (see README.md).
package serving

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/logging"
	"github.com/flywheel-ml/flywheel/platform/natsx"
	"github.com/flywheel-ml/flywheel/platform/redisx"
	"github.com/flywheel-ml/flywheel/platform/retry"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/features"
	"github.com/flywheel-ml/flywheel/services/features/online"
	"github.com/flywheel-ml/flywheel/services/features/views"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/serving/aliaswatch"
	"github.com/flywheel-ml/flywheel/services/serving/httpapi"
	"github.com/flywheel-ml/flywheel/services/serving/model"
	"github.com/flywheel-ml/flywheel/services/serving/oip"
	"github.com/flywheel-ml/flywheel/services/serving/predict"
	"github.com/flywheel-ml/flywheel/services/serving/predlog"
	"github.com/flywheel-ml/flywheel/services/serving/routing"
	"github.com/flywheel-ml/flywheel/services/serving/shed"
	"github.com/flywheel-ml/flywheel/services/serving/swap"
	v2 "github.com/flywheel-ml/flywheel/services/serving/v2"
)

// Config is everything the service reads from FLYWHEEL_* variables and flags.
type Config struct {
	HTTP    httpx.Config `prefix:"SERVING_" defaults:"ADDR=127.0.0.1:8084"`
	Auth    httpx.AuthConfig
	Log     logging.Config
	Kafka   kafkax.Config
	Redis   redisx.Config
	NATS    natsx.Config
	Serving Settings `prefix:"SERVING_"`
	// Registry names the registry deployment whose aliases serving follows.
	Registry RegistryNames `prefix:"REGISTRY_"`
}

// RegistryNames is the registry deployment's naming, read from the registry's own variable so
// both agree.
type RegistryNames struct {
	Prefix string `env:"PREFIX" usage:"prefix of the registry's JetStream buckets (as the registry is configured)"`
}

// viewResolver answers the model plans' questions about the served feature views.
type viewResolver struct {
	*online.Reader
	cat *views.Catalog
}

func (v viewResolver) JoinKeys(view string) ([]string, bool) {
	vw, ok := v.cat.Get(view)
	if !ok {
		return nil, false
	}
	return vw.Entities, true
}

// Run starts the service and blocks until ctx is cancelled and it has shut down.
func Run(ctx context.Context, cfg Config) error {
	rt, err := app.New(ctx, "serving", &cfg, cfg.HTTP, cfg.Auth, cfg.Log)
	if err != nil {
		return err
	}
	s := cfg.Serving
	if _, set := os.LookupEnv("GOGC"); !set && s.GCPercent > 0 {
		debug.SetGCPercent(s.GCPercent)
	}
	cat, err := features.LoadViews(s.ViewsDir)
	if err != nil {
		return retry.Permanent(err)
	}
	policies, err := s.Policies()
	if err != nil {
		return retry.Permanent(err)
	}
	cache, err := model.NewCache(s.CacheDir)
	if err != nil {
		return retry.Permanent(err)
	}
	redis, err := rt.Redis(ctx, cfg.Redis)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	reader := online.NewReader(online.New(redis, s.RedisPrefix), cat)

	// The prediction log must not hold serving up: Kafka is set up in the background and
	// predictions are buffered (then dropped and counted) while it is away.
	// kafka-go preallocates every partition batch at the configured batch size; the log
	// writes batches of up to 500, so a smaller one saves clearing megabytes a second.
	logKafka := cfg.Kafka
	logKafka.BatchSize = min(max(logKafka.BatchSize, 1), 256)
	admin, producer := kafkax.NewAdmin(cfg.Kafka), kafkax.NewProducer(logKafka)
	rt.Group.Defer("kafka admin", admin.Close)
	rt.Group.Defer("kafka producer", producer.Close)
	rt.Group.Go("predictions topic", func(ctx context.Context) error {
		_ = retry.Do(ctx, retry.Backoff{Max: 15 * time.Second}, func(ctx context.Context) error {
			return admin.EnsureTopics(ctx, schemas.TopicPredictions)
		}, retry.Logged(rt.Log, "create the predictions topic; predictions are buffered meanwhile"))
		return nil
	})
	plog := predlog.New(producer, s.LogBuffer, 500, rt.Log.Named("predlog"), rt.Registry)
	rt.Group.Go("prediction log", plog.Run)

	table := routing.NewTable(policies)
	reg := client.New(s.RegistryURL, s.RegistryToken, "serving", &http.Client{Timeout: time.Minute})
	loader := model.NewLoader(reg, viewResolver{Reader: reader, cat: cat}, cache)
	// Loads outlive the alias move that started them but not the service.
	loadCtx, stopLoads := context.WithCancel(context.WithoutCancel(ctx))
	swaps := swap.New(loadCtx, loader, table, cache, rt.Log.Named("swap"), rt.Registry)
	rt.Group.Defer("model loads", func() error { stopLoads(); swaps.Wait(); return nil })

	// Serve what the cache holds at once; the registry's aliases override it when they arrive.
	if cached, err := cache.Aliases(); err != nil {
		rt.Log.Warn("the local model cache cannot be read; waiting for the registry", zap.Error(err))
	} else {
		for name, aliases := range cached {
			if len(s.Models) > 0 && !contains(s.Models, name) {
				continue
			}
			for alias, version := range aliases {
				swaps.Move(name, alias, version)
			}
		}
	}
	var natsOnce sync.Mutex
	var nc *natsx.Conn
	connect := func(ctx context.Context) (jetstream.JetStream, error) {
		natsOnce.Lock()
		defer natsOnce.Unlock()
		if nc == nil {
			c, err := natsx.Connect(ctx, cfg.NATS, "flywheel-serving", rt.Log.Named("nats"))
			if err != nil {
				return nil, err
			}
			nc = c
		}
		return nc.JS, nil
	}
	rt.Group.Defer("nats", func() error {
		natsOnce.Lock()
		defer natsOnce.Unlock()
		if nc != nil {
			return nc.Close()
		}
		return nil
	})
	var synced atomic.Bool
	watch := aliaswatch.New(connect, cfg.Registry.Prefix, swaps, s.Models, func() { synced.Store(true) }, rt.Log.Named("aliases"))
	rt.Group.Go("alias watch", watch.Run)
	ready := func() error { return modelsReady(table, s.Models, synced.Load(), swaps.Loading()) }
	rt.HTTP.AddCheck("models", func(context.Context) error { return ready() })
	maxInFlight := s.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = 64 * runtime.GOMAXPROCS(0)
	}
	limiter := shed.New(maxInFlight, time.Second, rt.Registry)
	svc := predict.New(table, reader, plog, time.Now, rt.Registry)
	httpapi.New(svc, limiter, s.Timeout).Register(rt.HTTP)
	backend := oip.New(svc, func() bool { return ready() == nil })
	if err := serveV2(rt, backend, limiter, s, cfg.HTTP.MaxBodyBytes); err != nil {
		return err
	}
	rt.Log.Info("serving", zap.Strings("models", s.Models), zap.String("cache", s.CacheDir), zap.Int("max_in_flight", maxInFlight))
	return rt.Run(ctx)
}

// serveV2 mounts the Open Inference Protocol's REST routes (health without a token, the rest
// with the read scope, inference shed like the own API and bounded by the same deadline) and
// starts its gRPC server.
func serveV2(rt *app.Runtime, backend *oip.Backend, limiter *shed.Limiter, s Settings, maxBody int64) error {
	rest := v2.NewREST(backend, v2.WithServerVersion(app.Version()), v2.WithMaxBodyBytes(maxBody))
	serve := func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), s.Timeout)
		defer cancel()
		rest.ServeHTTP(w, r.WithContext(ctx))
		return nil
	}
	rt.HTTP.Handle("GET /v2/health/", "", serve)
	rt.HTTP.Handle("GET /v2", httpx.ScopeRead, serve)
	rt.HTTP.Handle("GET /v2/", httpx.ScopeRead, serve)
	rt.HTTP.Handle("POST /v2/", httpx.ScopeRead, limiter.Wrap(serve))
	if s.GRPCAddr == "" {
		return nil
	}
	lis, err := net.Listen("tcp", s.GRPCAddr)
	if err != nil {
		return retry.Permanent(fmt.Errorf("listen on %s (is another process using it? set FLYWHEEL_SERVING_GRPC_ADDR): %w", s.GRPCAddr, err))
	}
	srv := v2.NewGRPC(backend)
	rt.Group.Go("grpc", func(ctx context.Context) error {
		done := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				srv.GracefulStop()
			case <-done:
			}
		}()
		defer close(done)
		if err := srv.Serve(lis); err != nil && ctx.Err() == nil {
			return retry.Permanent(fmt.Errorf("grpc server: %w", err))
		}
		return nil
	})
	rt.Log.Info("open inference protocol gRPC", zap.String("addr", lis.Addr().String()))
	return nil
}

// modelsReady is the readiness of the models. With MODELS listed: each has a champion loaded
// and warm. Without: serving is ready once it serves what the registry says — the alias watch
// has read the current aliases and no champion is still loading — or, while the registry
// cannot be reached, once it serves at least one champion (from its local cache). A registry
// with no model at all is nothing to wait for.
func modelsReady(table *routing.Table, want []string, synced, loading bool) error {
	if len(want) == 0 {
		for _, name := range table.Models() {
			if table.Get(name).Ready() && (!synced || !loading) {
				return nil
			}
		}
		switch {
		case !synced:
			return fmt.Errorf("waiting for the registry's aliases (no model loaded from the local cache either)")
		case loading:
			return fmt.Errorf("loading the champions the registry names")
		}
		return nil
	}
	var missing []string
	for _, name := range want {
		if !table.Get(name).Ready() {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no champion loaded yet for %s", strings.Join(missing, ", "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
