package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"
)

func featuresCommand() *cobra.Command {
	root := &cobra.Command{Use: "features", Short: "Operate the feature store"}
	var url, token, view, maxWait string
	backfill := &cobra.Command{
		Use:   "backfill",
		Short: "Rebuild a view's online and offline state from the ClickHouse event log",
		Long: `Rebuilds a feature view's Redis state and ClickHouse updates from the event log, after losing
Redis or for a new view. Live processing of the view pauses meanwhile and resumes after it,
counting every event exactly once. Needs a token with the admin scope when auth is on.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, _ := json.Marshal(map[string]string{"view": view, "max_wait": maxWait})
			req, _ := http.NewRequestWithContext(cmd.Context(), http.MethodPost, url+"/v1/features/backfill", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("backfill: %d %s", resp.StatusCode, out)
			}
			cmd.Println(string(out))
			return nil
		},
	}
	backfill.Flags().StringVar(&url, "url", "http://127.0.0.1:8082", "features base URL")
	backfill.Flags().StringVar(&token, "token", "", "bearer token with the admin scope")
	backfill.Flags().StringVar(&view, "view", "card_activity", "feature view")
	backfill.Flags().StringVar(&maxWait, "max-wait", "30s", "how long to wait for the event log to catch up")
	root.AddCommand(backfill)
	return root
}
