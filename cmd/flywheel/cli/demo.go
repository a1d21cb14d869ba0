package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/demo"
	"github.com/flywheel-ml/flywheel/cmd/flywheel/demo/scenario"
	"github.com/flywheel-ml/flywheel/cmd/flywheel/up"
	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
)

func demoCommand(lookup config.LookupFunc) *cobra.Command {
	var keep, tour bool
	var sc scenario.Config
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole loop by itself: history, first model, live traffic, drift, retrain, promotion, hot swap",
		Long: `Starts the six services in this process with demo settings (10-second monitor windows; the
fraud model reads the 7-day card average and the request) against the local stack, then runs
a seeded scenario: days of card payments with labels, the first fraud model trained and
promoted through the gates, live payments scored by serving, then data drift (amounts and
merchant mix) and a new fraud pattern injected. It shows the monitor detecting the drift, the
trainer retraining on fresh labelled data with the drift event as its trigger, the gates
promoting the new version and serving switching to it, then reports the timeline and the
metrics before and after. It exits non-zero naming any step of the loop that did not happen.
Service logs go to .flywheel/demo/services.log. make demo starts an empty local stack first.`,
		Example: `  make demo                      # empty local stack, build, then this
  flywheel demo --keep           # leave the services running afterwards (Ctrl-C stops them)
  flywheel demo --rate 120 --seed 7
  flywheel demo --tour           # the older step-by-step tour against running services`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg struct {
				Kafka      kafkax.Config
				ClickHouse chx.Config
				Token      string `env:"DEMO_TOKEN" secret:"true" usage:"bearer token for the services, when auth is on"`
			}
			if err := config.Load(&cfg, nil, lookup, io.Discard); err != nil {
				return err
			}
			if tour {
				return demo.Run(cmd.Context(), demo.Config{Kafka: cfg.Kafka, ClickHouse: cfg.ClickHouse,
					Run: strconv.FormatInt(time.Now().Unix(), 36), Services: demo.DefaultServices(), Token: cfg.Token}, cmd.OutOrStdout())
			}
			return runLoopDemo(cmd.Context(), lookup, cfg.Kafka, cfg.ClickHouse, cfg.Token, sc, keep, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&keep, "keep", false, "keep the services running after the report, until Ctrl-C")
	f.BoolVar(&tour, "tour", false, "the step-by-step tour of ingest, features and the registry against running services instead")
	f.IntVar(&sc.Rate, "rate", 100, "live payments a second")
	f.IntVar(&sc.Cards, "cards", 3000, "cards in the world")
	f.IntVar(&sc.History, "history", 42000, "payments over the past 14 days")
	f.Uint64Var(&sc.Seed, "seed", 1, "seed of the world")
	f.DurationVar(&sc.Baseline, "baseline", 40*time.Second, "live traffic before the drift")
	f.DurationVar(&sc.Compare, "compare", 25*time.Second, "how long both versions score the same payments after the swap")
	f.DurationVar(&sc.LoopTimeout, "loop-timeout", 150*time.Second, "from the drift to the new champion answering, at most")
	return cmd
}

// demoPorts are the services' default ports, which the demo takes so the CLI and Grafana
// find them.
var demoPorts = map[string]string{"INGEST": "8081", "FEATURES": "8082", "REGISTRY": "8083", "SERVING": "8084", "MONITOR": "8085", "TRAINER": "8086"}

func runLoopDemo(ctx context.Context, lookup config.LookupFunc, kcfg kafkax.Config, ccfg chx.Config, token string, sc scenario.Config, keep bool, out io.Writer) error {
	for name, port := range demoPorts {
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			return fmt.Errorf("port %s (%s) is taken: the demo runs its own services — stop the others with `make down` (or deploy/local/services down)", port, strings.ToLower(name))
		}
		_ = l.Close()
	}
	dir := filepath.Join(".flywheel", "demo")
	modelsDir := filepath.Join(dir, "models")
	if err := os.MkdirAll(modelsDir, 0o755); err != nil {
		return err
	}
	spec, err := scenario.Spec("fraud", "transactions", "fraud_labels", "card_activity")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(modelsDir, "fraud.yaml"), spec, 0o644); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "services.log")
	logs, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logs.Close()
	cacheDir := filepath.Join(dir, "serving-cache")
	if err := os.RemoveAll(cacheDir); err != nil {
		return err
	}
	vars := map[string]string{"FLYWHEEL_SERVING_CACHE_DIR": cacheDir, "FLYWHEEL_TRAINER_MODELS_DIR": modelsDir, "FLYWHEEL_MONITOR_MODELS_DIR": modelsDir,
		"FLYWHEEL_MONITOR_WINDOW": "10s", "FLYWHEEL_MONITOR_GRACE": "3s", "FLYWHEEL_MONITOR_MIN_WINDOW": "300",
		"FLYWHEEL_MONITOR_TICK": "1s", "FLYWHEEL_MONITOR_LOOKBACK": "30m", "FLYWHEEL_MONITOR_PERSIST_K": "2",
		"FLYWHEEL_MONITOR_PERSIST_N": "3", "FLYWHEEL_MONITOR_COOLDOWN": "10m", "FLYWHEEL_MONITOR_MIN_LABELS": "200",
		"FLYWHEEL_MONITOR_PERF_RECHECK": "5m", "FLYWHEEL_MONITOR_SKEW_SAMPLE": "100", "FLYWHEEL_LOG_FORMAT": "json",
		// once the old champion is the challenger (after the swap), it also scores a share of
		// the traffic in the shadow
		"FLYWHEEL_SERVING_SHADOW": "fraud=0.2"}
	for name, port := range demoPorts {
		vars["FLYWHEEL_"+name+"_ADDR"] = "127.0.0.1:" + port
	}
	env := func(k string) (string, bool) {
		if v, ok := lookup(k); ok {
			return v, true
		}
		v, ok := vars[k]
		return v, ok
	}
	services, err := up.Services(env, logs)
	if err != nil {
		return err
	}
	// The services log to stderr; the demo's screen is stdout. Their logs go to the file.
	stderr := os.Stderr
	os.Stderr = logs
	defer func() { os.Stderr = stderr }()
	svcCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan error, 1)
	go func() { done <- up.Run(svcCtx, services) }()
	stopServices := func() error {
		stop()
		return <-done
	}
	fmt.Fprintf(out, "starting the six services (logs: %s) ...\n", logPath)
	base := map[string]string{}
	for name, port := range demoPorts {
		base[strings.ToLower(name)] = "http://127.0.0.1:" + port
	}
	if err := waitReady(ctx, base, done, 90*time.Second); err != nil {
		_ = stopServices()
		return fmt.Errorf("%w (service logs: %s)", err, logPath)
	}
	conn, err := chx.Open(ctx, ccfg)
	if err != nil {
		_ = stopServices()
		return fmt.Errorf("clickhouse at %s: %w", ccfg.Addr, err)
	}
	defer conn.Close()
	sc.Services, sc.Token, sc.Kafka, sc.ClickHouse = base, token, kcfg, conn
	sc.Model, sc.Stream, sc.Labels, sc.View = "fraud", "transactions", "fraud_labels", "card_activity"
	sc.Run = strconv.FormatInt(time.Now().Unix(), 36)
	sc.HistoryWindow = 14 * 24 * time.Hour
	sc.LabelDelay, sc.ReadyTimeout, sc.TrainTimeout = 2*time.Second, 60*time.Second, 3*time.Minute
	sc.Out = out
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		sc.Live = true
	}
	sc.Grafana = "Grafana (deploy/grafana, or deploy/compose on :3000): Flywheel — models (predictions by version, drift score against threshold, " +
		"performance, skew, the promotion timeline). Without Grafana: flywheel drift status fraud; flywheel models history fraud."
	_, runErr := scenario.Run(ctx, sc)
	if keep && runErr == nil {
		fmt.Fprintln(out, "\nservices keep running on :8081–:8086; Ctrl-C stops them")
		<-ctx.Done()
	}
	if err := stopServices(); err != nil && runErr == nil {
		runErr = fmt.Errorf("services: %w (logs: %s)", err, logPath)
	}
	return runErr
}

// waitReady waits until every service answers /readyz with 200.
func waitReady(ctx context.Context, base map[string]string, done <-chan error, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for name, url := range base {
		for {
			resp, err := client.Get(url + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK || name == "serving" && resp.StatusCode == http.StatusServiceUnavailable {
					break // serving is ready once a champion exists: the demo trains it
				}
			}
			select {
			case err := <-done:
				return fmt.Errorf("the services stopped: %v", err)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(300 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s at %s is not ready after %s", name, url, timeout)
			}
		}
	}
	return nil
}
