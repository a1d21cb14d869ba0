// Package cli defines the flywheel command tree.
package cli

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/up"
	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/platform/config"
)

// New returns the root command. Environment variables are read through lookup.
func New(stdout, stderr io.Writer, lookup config.LookupFunc) *cobra.Command {
	root := &cobra.Command{
		Use:           "flywheel",
		Short:         "Flywheel: event-driven MLOps on Kafka, ClickHouse, Redis and NATS",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Run every service in one process (configured by FLYWHEEL_* variables)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			services, err := up.Services(lookup, stderr)
			if err != nil {
				return err
			}
			return up.Run(cmd.Context(), services)
		},
	})
	root.AddCommand(demoCommand(lookup))
	root.AddCommand(schemasCommand(lookup))
	root.AddCommand(benchCommand(lookup))
	root.AddCommand(featuresCommand())
	root.AddCommand(registryCommands(lookup)...)
	root.AddCommand(trainCommand(lookup))
	root.AddCommand(predictCommand(lookup))
	root.AddCommand(driftCommand(lookup))
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the build's module version and VCS revision",
		Run: func(cmd *cobra.Command, _ []string) {
			cmd.Println(Version())
		},
	})
	return root
}

// Version describes the running build.
func Version() string { return app.Version() }
