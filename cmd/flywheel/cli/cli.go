// Package cli defines the flywheel command tree.
package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/platform/config"
)

// New returns the root command. Environment variables are read through lookup.
func New(stdout, stderr io.Writer, lookup config.LookupFunc) *cobra.Command {
	root := &cobra.Command{
		Use:   "flywheel",
		Short: "Flywheel: event-driven MLOps on Kafka, ClickHouse, Redis and NATS",
		Long: `flywheel runs and operates Flywheel: start the six services (up, down, status), send
events (streams), read features (features), train and inspect runs and models (train, runs,
models), score (predict) and watch drift (drift).

Every command that prints data prints a table, or JSON with -o json. Services are found at
127.0.0.1:8081-8086 unless --<service>-url or FLYWHEEL_<SERVICE>_URL say otherwise; the bearer
token is --token or FLYWHEEL_TOKEN.`,
		Example: `  flywheel up --detach && flywheel status
  flywheel streams produce transactions -f payments.ndjson
  flywheel features get card_activity card_id=c-42
  flywheel train fraud && flywheel models history fraud
  flywheel predict fraud -i '{"card_id":"c-42","amount":912.5,"merchant_category":"electronics","channel":"ecom","country":"DE"}'
  flywheel drift status fraud -o json`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(upCommand(lookup), downCommand(lookup), statusCommand(lookup))
	root.AddCommand(streamsCommand(lookup), schemasCommand(lookup))
	root.AddCommand(featuresCommand(lookup))
	root.AddCommand(trainCommand(lookup))
	root.AddCommand(registryCommands(lookup)...)
	root.AddCommand(predictCommand(lookup), driftCommand(lookup))
	root.AddCommand(demoCommand(lookup), benchCommand(lookup), versionCommand())
	return root
}

func versionCommand() *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the build's module version and VCS revision",
		Example: "  flywheel version -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := Version()
			return emit(cmd.OutOrStdout(), output, map[string]string{"version": v}, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, v)
				return err
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// Version describes the running build.
func Version() string { return app.Version() }
