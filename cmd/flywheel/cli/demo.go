package cli

import (
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/demo"
	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
)

func demoCommand(lookup config.LookupFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Walk through the Flywheel lifecycle against running services (make demo starts them)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg struct {
				Kafka      kafkax.Config
				ClickHouse chx.Config
				Token      string `env:"DEMO_TOKEN" secret:"true" usage:"bearer token for the services, when auth is on"`
			}
			if err := config.Load(&cfg, nil, lookup, io.Discard); err != nil {
				return err
			}
			return demo.Run(cmd.Context(), demo.Config{Kafka: cfg.Kafka, ClickHouse: cfg.ClickHouse,
				Run: strconv.FormatInt(time.Now().Unix(), 36), Services: demo.DefaultServices(), Token: cfg.Token}, cmd.OutOrStdout())
		},
	}
}
