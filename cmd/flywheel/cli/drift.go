package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/config"
)

func driftCommand(lookup config.LookupFunc) *cobra.Command {
	root := &cobra.Command{
		Use:     "drift",
		Short:   "What the monitor sees: drift scores and events",
		Example: "  flywheel drift status fraud",
	}
	opts := &clientOptions{}
	status := &cobra.Command{
		Use:   "status MODEL",
		Short: "The newest drift score of every feature and method against its threshold, and the latest events",
		Example: `  flywheel drift status fraud
  flywheel drift status fraud -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client(monitorService, lookup)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.get(cmd.Context(), "/v1/models/"+url.PathEscape(args[0])+"/drift", nil, &raw); err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), opts.output, raw, func(w io.Writer) error { return printDrift(w, raw) })
		},
	}
	opts.addFlags(status, monitorService)
	root.AddCommand(status)
	return root
}

// printDrift prints the monitor's drift status: the latest score of each feature and method,
// then the latest events.
func printDrift(w io.Writer, raw json.RawMessage) error {
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
	t := newTable(w, "VERSION", "KIND", "FEATURE", "METHOD", "WINDOW END", "N", "SCORE", "THRESHOLD", "DRIFTED")
	for _, s := range got.Latest {
		t.row(fmt.Sprint(s.Version), s.Kind, s.Feature, s.Method, s.WindowEnd.Format(time.RFC3339), fmt.Sprint(s.N),
			fmt.Sprintf("%.4g", s.Score), fmt.Sprintf("%.4g", s.Threshold), fmt.Sprint(s.Drifted))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(got.Events) > 0 {
		fmt.Fprintln(w)
		e := newTable(w, "EVENT", "VERSION", "KIND", "FEATURE", "DETECTED")
		for _, ev := range got.Events {
			e.row(ev.ID, fmt.Sprint(ev.Version), ev.Kind, ev.Feature, ev.DetectedAt.Format(time.RFC3339))
		}
		return e.flush()
	}
	return nil
}
