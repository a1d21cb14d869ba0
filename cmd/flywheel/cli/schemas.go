package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/services/ingest"
	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
	"github.com/flywheel-ml/flywheel/services/ingest/deployments"
)

func schemasCommand(lookup config.LookupFunc) *cobra.Command {
	root := &cobra.Command{
		Use:     "schemas",
		Short:   "Check stream schemas for backward-incompatible changes",
		Example: "  flywheel schemas check --against /path/to/main/schemas/streams",
	}
	var dir, against string
	var output outputFormat
	check := &cobra.Command{
		Use:   "check",
		Short: "Compare the stream schemas with the deployed ones and refuse backward-incompatible changes",
		Long: `Compares every stream schema (the shipped catalog, or --dir) with the version last deployed
(recorded by ingest in ClickHouse, or the catalog in --against) and exits non-zero when a change
is backward-incompatible: removed or retyped required fields, added required fields, narrowed
enums or bounds, changed envelope fields, or a change without a version bump.`,
		Example: `  flywheel schemas check                                  # against what ClickHouse records as deployed
  flywheel schemas check --dir schemas/streams --against ../main/schemas/streams -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := ingest.LoadCatalog(dir)
			if err != nil {
				return err
			}
			var deployed map[string]*catalog.Stream
			if against != "" {
				base, err := ingest.LoadCatalog(against)
				if err != nil {
					return fmt.Errorf("--against: %w", err)
				}
				deployed = map[string]*catalog.Stream{}
				for _, s := range base.Streams() {
					deployed[s.Name] = s
				}
			} else {
				var cfg struct{ ClickHouse chx.Config }
				if err := config.Load(&cfg, nil, lookup, io.Discard); err != nil {
					return err
				}
				conn, err := chx.Open(cmd.Context(), cfg.ClickHouse)
				if err != nil {
					return fmt.Errorf("clickhouse at %s (is the stack up? `make up` starts it; or compare with a directory: --against DIR): %w", cfg.ClickHouse.Addr, err)
				}
				defer conn.Close()
				var tables uint64
				if err := conn.QueryRow(cmd.Context(), "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'stream_schemas'").Scan(&tables); err != nil {
					return err
				}
				deployed = map[string]*catalog.Stream{}
				if tables > 0 {
					if deployed, err = deployments.Latest(cmd.Context(), conn); err != nil {
						return err
					}
				}
			}
			findings := deployments.Check(cat, deployed)
			if findings == nil {
				findings = []deployments.Finding{}
			}
			if err := emit(cmd.OutOrStdout(), output, findings, func(w io.Writer) error { return printFindings(w, findings) }); err != nil {
				return err
			}
			for _, f := range findings {
				if f.Status == deployments.StatusIncompatible {
					return errors.New("backward-incompatible schema changes found")
				}
			}
			return nil
		},
	}
	check.Flags().StringVar(&dir, "dir", "", "directory of <stream>.json schemas to check (default: the shipped catalog)")
	check.Flags().StringVar(&against, "against", "", "compare with the catalog in this directory instead of what ClickHouse records as deployed")
	addOutputFlag(check, &output)
	root.AddCommand(check)
	return root
}

func printFindings(w io.Writer, findings []deployments.Finding) error {
	for _, f := range findings {
		deployed := "never deployed"
		if f.DeployedVersion > 0 {
			deployed = fmt.Sprintf("deployed v%d", f.DeployedVersion)
		}
		fmt.Fprintf(w, "%-24s v%-3d %-16s %s\n", f.Stream, f.Version, deployed, f.Status)
		for _, p := range f.Problems {
			fmt.Fprintf(w, "    - %s\n", strings.TrimSpace(p))
		}
	}
	return nil
}
