package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/loadgen"
)

func benchCommand() *cobra.Command {
	root := &cobra.Command{Use: "bench", Short: "Load tools for the figures in docs/benchmarks.md"}
	var cfg loadgen.IngestConfig
	ingest := &cobra.Command{
		Use:   "ingest",
		Short: "POST batches of fresh transactions to ingest from concurrent clients and report events/s and batch latency",
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := loadgen.Ingest(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			cmd.Println(rep.String())
			return nil
		},
	}
	ingest.Flags().StringVar(&cfg.URL, "url", "http://127.0.0.1:8081", "ingest base URL")
	ingest.Flags().StringVar(&cfg.Stream, "stream", "transactions", "stream to post to (transactions schema)")
	ingest.Flags().IntVar(&cfg.Batch, "batch", 500, "events per request")
	ingest.Flags().IntVar(&cfg.Concurrency, "concurrency", 8, "concurrent clients")
	ingest.Flags().DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long to run")
	ingest.Flags().StringVar(&cfg.Token, "token", "", "bearer token with the ingest scope")
	root.AddCommand(ingest)
	return root
}
