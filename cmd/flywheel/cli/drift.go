package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/config"
)

const (
	monitorURLEnv     = "FLYWHEEL_MONITOR_URL"
	defaultMonitorURL = "http://127.0.0.1:8085"
)

func driftCommand(lookup config.LookupFunc) *cobra.Command {
	root := &cobra.Command{Use: "drift", Short: "What the monitor sees: drift scores and events"}
	opts := &registryOptions{}
	var monitorURL string
	status := &cobra.Command{
		Use:   "status MODEL",
		Short: "The newest drift score of every feature and method against its threshold, and the latest events",
		Example: `  flywheel drift status fraud
  flywheel drift status fraud -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := serviceClient(opts, monitorURL, "--monitor-url", monitorURLEnv, defaultMonitorURL, lookup)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.get(cmd.Context(), "/v1/models/"+url.PathEscape(args[0])+"/drift", nil, &raw); err != nil {
				return err
			}
			if opts.output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), raw)
			}
			var got struct {
				Latest []struct {
					Version   int       `json:"version"`
					Kind      string    `json:"kind"`
					Feature   string    `json:"feature"`
					Method    string    `json:"method"`
					WindowEnd time.Time `json:"window_end"`
					N         int       `json:"n"`
					Score     float64   `json:"score"`
					Threshold float64   `json:"threshold"`
					Drifted   bool      `json:"drifted"`
				} `json:"latest"`
				Events []struct {
					ID         string    `json:"id"`
					Version    int       `json:"version"`
					Kind       string    `json:"kind"`
					Feature    string    `json:"feature"`
					DetectedAt time.Time `json:"detected_at"`
				} `json:"events"`
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				return fmt.Errorf("monitor: decoding the drift status: %w", err)
			}
			t := newTable(cmd.OutOrStdout(), "VERSION", "KIND", "FEATURE", "METHOD", "WINDOW END", "N", "SCORE", "THRESHOLD", "DRIFTED")
			for _, s := range got.Latest {
				t.row(fmt.Sprint(s.Version), s.Kind, s.Feature, s.Method, s.WindowEnd.Format(time.RFC3339), fmt.Sprint(s.N),
					fmt.Sprintf("%.4g", s.Score), fmt.Sprintf("%.4g", s.Threshold), fmt.Sprint(s.Drifted))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if len(got.Events) > 0 {
				cmd.Println()
				e := newTable(cmd.OutOrStdout(), "EVENT", "VERSION", "KIND", "FEATURE", "DETECTED")
				for _, ev := range got.Events {
					e.row(ev.ID, fmt.Sprint(ev.Version), ev.Kind, ev.Feature, ev.DetectedAt.Format(time.RFC3339))
				}
				return e.flush()
			}
			return nil
		},
	}
	opts.addFlags(status)
	status.Flags().StringVar(&monitorURL, "monitor-url", "", "monitor base URL (default $"+monitorURLEnv+", else "+defaultMonitorURL+")")
	root.AddCommand(status)
	return root
}
