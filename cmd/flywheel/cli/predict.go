package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/config"
)

type predictionOut struct {
	Version int       `json:"version"`
	Alias   string    `json:"alias"`
	Score   float64   `json:"score"`
	Label   *int      `json:"label"`
	Scores  []float64 `json:"scores"`
}

type predictOut struct {
	Model       string          `json:"model"`
	Version     int             `json:"version"`
	RequestID   string          `json:"request_id"`
	Predictions []predictionOut `json:"predictions"`
}

// maxPredictBatch is the instances the CLI sends per call.
const maxPredictBatch = 100

func predictCommand(lookup config.LookupFunc) *cobra.Command {
	opts := &clientOptions{}
	var file, pin string
	var instances []string
	cmd := &cobra.Command{
		Use:   "predict MODEL",
		Short: "Score instances with a served model (one, many, or a stored time range with `predict batch`)",
		Long: `Sends instances to serving's POST /v1/models/MODEL:predict and prints each prediction with
the version that made it. Instances are JSON objects of the entity keys and request-time
fields (and an optional "features" object of values you supply); give them with -i (repeat
it) or as NDJSON with -f FILE (- for stdin). They go 100 per call. Every prediction is logged
to the predictions topic like any other. With -o json each call's answer is printed as serving
sent it (one JSON document per 100 instances).`,
		Example: `  flywheel predict fraud -i '{"card_id":"c-42","amount":912.5,"merchant_category":"electronics","channel":"ecom","country":"DE"}'
  flywheel predict fraud -f instances.ndjson -o json
  cat instances.ndjson | flywheel predict fraud -f - --pin challenger`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client(servingService, lookup)
			if err != nil {
				return err
			}
			all, err := jsonInputs("-i", instances, file, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if len(all) == 0 {
				return fmt.Errorf("no instances: give them with -i JSON or -f FILE")
			}
			var results []predictOut
			for start := 0; start < len(all); start += maxPredictBatch {
				out, err := callPredict(cmd.Context(), c, args[0], all[start:min(start+maxPredictBatch, len(all))], pin, "")
				if err != nil {
					return err
				}
				results = append(results, out)
			}
			if opts.output == outputJSON {
				for _, r := range results {
					if err := writeJSON(cmd.OutOrStdout(), r); err != nil {
						return err
					}
				}
				return nil
			}
			t := newTable(cmd.OutOrStdout(), "#", "VERSION", "ALIAS", "SCORE", "LABEL", "REQUEST")
			n := 0
			for _, r := range results {
				for _, p := range r.Predictions {
					label := "-"
					if p.Label != nil {
						label = fmt.Sprint(*p.Label)
					}
					t.row(fmt.Sprint(n), fmt.Sprint(p.Version), p.Alias, fmt.Sprintf("%.6f", p.Score), label, r.RequestID)
					n++
				}
			}
			return t.flush()
		},
	}
	opts.addFlags(cmd, servingService)
	cmd.Flags().StringArrayVarP(&instances, "instance", "i", nil, "an instance as JSON (repeatable)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "NDJSON file of instances (- for stdin)")
	cmd.Flags().StringVar(&pin, "pin", "", "version to answer: champion, challenger or a version number")
	cmd.AddCommand(predictBatchCommand(lookup))
	return cmd
}

func callPredict(ctx context.Context, c *apiClient, model string, instances []json.RawMessage, pin, id string) (predictOut, error) {
	var out predictOut
	body := map[string]any{"instances": instances}
	if id != "" {
		body["id"] = id
	}
	path := "/v1/models/" + url.PathEscape(model) + ":predict"
	if pin != "" {
		c = c.withHeader("X-Flywheel-Model-Version", pin)
	}
	err := c.post(ctx, path, body, &out)
	return out, err
}
