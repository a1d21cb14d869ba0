package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/loadgen"
	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/services/features"
	"github.com/flywheel-ml/flywheel/services/features/agg"
)

func benchCommand(lookupEnv config.LookupFunc) *cobra.Command {
	root := &cobra.Command{
		Use:   "bench",
		Short: "Load tools for the figures in docs/benchmarks.md",
		Example: `  flywheel bench ingest --duration 10s
  flywheel bench lookup --qps 1000 -o json`,
	}
	var output outputFormat
	addOutputFlag(root, &output)
	var cfg loadgen.IngestConfig
	ingest := &cobra.Command{
		Use:     "ingest",
		Short:   "POST batches of fresh transactions to ingest from concurrent clients and report events/s and batch latency",
		Example: "  flywheel bench ingest --batch 500 --concurrency 8 --duration 20s",
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := loadgen.Ingest(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return emitReport(cmd, output, rep)
		},
	}
	ingest.Flags().StringVar(&cfg.URL, "url", "http://127.0.0.1:8081", "ingest base URL")
	ingest.Flags().StringVar(&cfg.Stream, "stream", "transactions", "stream to post to (transactions schema)")
	ingest.Flags().IntVar(&cfg.Batch, "batch", 500, "events per request")
	ingest.Flags().IntVar(&cfg.Concurrency, "concurrency", 8, "concurrent clients")
	ingest.Flags().DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long to run")
	ingest.Flags().StringVar(&cfg.Token, "token", "", "bearer token with the ingest scope")
	root.AddCommand(ingest)

	var lc loadgen.LookupConfig
	lookup := &cobra.Command{
		Use:     "lookup",
		Short:   "Online feature lookups at a fixed rate (open loop); reports latency percentiles",
		Example: "  flywheel bench lookup --qps 2000 --entities 1 --duration 20s",
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := loadgen.Lookup(cmd.Context(), lc)
			if err != nil {
				return err
			}
			return emitReport(cmd, output, rep)
		},
	}
	lookup.Flags().StringVar(&lc.URL, "url", "http://127.0.0.1:8082", "features base URL")
	lookup.Flags().StringVar(&lc.View, "view", "card_activity", "feature view")
	lookup.Flags().IntVar(&lc.Features, "features", 13, "features per request (the view's first N)")
	lookup.Flags().IntVar(&lc.Entities, "entities", 1, "entities per request")
	lookup.Flags().IntVar(&lc.Cards, "cards", 1000, "cards to draw entities from (c-0 ...)")
	lookup.Flags().IntVar(&lc.QPS, "qps", 2000, "requests per second")
	lookup.Flags().DurationVar(&lc.Duration, "duration", 20*time.Second, "how long to run")
	lookup.Flags().StringVar(&lc.Token, "token", "", "bearer token with the read scope")
	root.AddCommand(lookup)

	var sc loadgen.StreamConfig
	stream := &cobra.Command{
		Use:     "features-stream",
		Short:   "Produce N envelopes to events.<stream> and time the features service applying them to both stores",
		Example: "  flywheel bench features-stream --n 200000",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var kc struct{ Kafka kafkax.Config }
			if err := config.Load(&kc, nil, lookupEnv, io.Discard); err != nil {
				return err
			}
			sc.Kafka = kc.Kafka
			rep, err := loadgen.Stream(cmd.Context(), sc)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), output, rep, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%d events applied to %s (Redis + ClickHouse) in %v: %.0f events/s; after the producer finished, %d events in %v: %.0f events/s\n",
					sc.N, sc.View, rep.Elapsed.Round(time.Millisecond), rep.Rate(), rep.Drained, rep.DrainElapsed.Round(time.Millisecond), rep.DrainRate())
				return err
			})
		},
	}
	stream.Flags().StringVar(&sc.FeaturesURL, "url", "http://127.0.0.1:8082", "features base URL (for its metrics)")
	stream.Flags().StringVar(&sc.Stream, "stream", "transactions", "source stream")
	stream.Flags().StringVar(&sc.View, "view", "card_activity", "view whose applied-update counter to watch")
	stream.Flags().IntVar(&sc.N, "n", 200000, "events")
	stream.Flags().IntVar(&sc.Cards, "cards", 1000, "distinct cards")
	root.AddCommand(stream)

	var pc loadgen.PITConfig
	var viewName, viewsDir string
	pit := &cobra.Command{
		Use:     "pit",
		Short:   "Point-in-time retrieval of N entity rows straight from the offline store",
		Example: "  flywheel bench pit --rows 100000",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cc struct{ ClickHouse chx.Config }
			if err := config.Load(&cc, nil, lookupEnv, io.Discard); err != nil {
				return err
			}
			cat, err := features.LoadViews(viewsDir)
			if err != nil {
				return err
			}
			v, ok := cat.Get(viewName)
			if !ok {
				return fmt.Errorf("no view %s", viewName)
			}
			conn, err := chx.Open(cmd.Context(), cc.ClickHouse)
			if err != nil {
				return err
			}
			defer conn.Close()
			elapsed, present, err := loadgen.PIT(cmd.Context(), conn, agg.NewEngine(v), pc)
			if err != nil {
				return err
			}
			rep := struct {
				Rows     int           `json:"rows"`
				Features int           `json:"features"`
				Elapsed  time.Duration `json:"elapsed_ns"`
				RowsPerS float64       `json:"rows_per_second"`
				Present  int           `json:"present"`
			}{pc.Rows, len(v.Features), elapsed, float64(pc.Rows) / elapsed.Seconds(), present}
			return emit(cmd.OutOrStdout(), output, rep, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%d rows × %d features in %v (%.0f rows/s); %d values present\n", rep.Rows, rep.Features,
					elapsed.Round(time.Millisecond), rep.RowsPerS, present)
				return err
			})
		},
	}
	pit.Flags().IntVar(&pc.Rows, "rows", 1_000_000, "entity rows")
	pit.Flags().IntVar(&pc.Cards, "cards", 5000, "cards to draw from (c-0 ...)")
	pit.Flags().DurationVar(&pc.Span, "span", 2*time.Hour, "rows' timestamps fall within the last span")
	pit.Flags().StringVar(&viewName, "view", "card_activity", "feature view")
	pit.Flags().StringVar(&viewsDir, "views-dir", "", "directory of view definitions (default: the shipped ones)")
	root.AddCommand(pit)
	root.AddCommand(registryLogCommand(&output), registrySearchCommand(&output))
	return root
}

// emitReport prints a load report: its one-line summary, or the report as JSON.
func emitReport(cmd *cobra.Command, output outputFormat, rep fmt.Stringer) error {
	return emit(cmd.OutOrStdout(), output, rep, func(w io.Writer) error {
		_, err := fmt.Fprintln(w, rep.String())
		return err
	})
}

func registryLogCommand(output *outputFormat) *cobra.Command {
	var cfg loadgen.RegistryLogConfig
	cmd := &cobra.Command{
		Use:     "registry-log",
		Short:   "Closed-loop runs/log-batch calls from concurrent clients, one run each; reports requests/s, metric points/s and latency",
		Example: "  flywheel bench registry-log --concurrency 20 --duration 20s",
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := loadgen.RegistryLog(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return emitReport(cmd, *output, rep)
		},
	}
	cmd.Flags().StringVar(&cfg.URL, "url", registryService.defaultURL(), "registry base URL")
	cmd.Flags().StringVar(&cfg.Token, "token", "", "bearer token with the write scope")
	cmd.Flags().IntVar(&cfg.Concurrency, "concurrency", 20, "concurrent clients, each logging to its own run")
	cmd.Flags().IntVar(&cfg.Metrics, "metrics", 10, "metric points per log-batch call (keys m0, m1, ...)")
	cmd.Flags().DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long to run")
	return cmd
}

func registrySearchCommand(output *outputFormat) *cobra.Command {
	var cfg loadgen.RegistrySearchConfig
	cmd := &cobra.Command{
		Use:     "registry-search",
		Short:   "Seed an experiment with N runs (once) and time sequential runs/search calls over it",
		Example: "  flywheel bench registry-search --runs 10000 --iterations 50",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Experiment == "" {
				cfg.Experiment = fmt.Sprintf("flywheel-bench-search-%d", cfg.Runs)
			}
			cfg.Progress = cmd.ErrOrStderr()
			rep, err := loadgen.RegistrySearch(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), *output, rep, func(w io.Writer) error {
				if rep.Seeded > 0 {
					fmt.Fprintf(w, "seeded %d runs in %v (%.0f runs/s)\n", rep.Seeded, rep.SeedElapsed.Round(time.Millisecond),
						float64(rep.Seeded)/rep.SeedElapsed.Seconds())
				}
				fmt.Fprintf(w, "experiment %s (%s), %d runs; %d sequential searches per query\n", cfg.Experiment, rep.ExperimentID, rep.Runs, cfg.Iterations)
				for _, s := range rep.Searches {
					fmt.Fprintln(w, s.String())
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&cfg.URL, "url", registryService.defaultURL(), "registry base URL")
	cmd.Flags().StringVar(&cfg.Token, "token", "", "bearer token with the read and write scopes (seeding writes)")
	cmd.Flags().StringVar(&cfg.Experiment, "experiment", "", "experiment to search (default flywheel-bench-search-<runs>; created and seeded when short of runs)")
	cmd.Flags().IntVar(&cfg.Runs, "runs", 100_000, "runs the experiment must hold")
	cmd.Flags().IntVar(&cfg.SeedConcurrency, "seed-concurrency", 32, "concurrent clients while seeding")
	cmd.Flags().IntVar(&cfg.Iterations, "iterations", 200, "sequential searches per query")
	return cmd
}
