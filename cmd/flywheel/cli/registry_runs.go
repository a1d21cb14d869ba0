package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/config"
)

// mlflowRun is the part of an MLflow Run the tables show; JSON output prints the registry's
// own objects instead, so fields missing here are never lost.
type mlflowRun struct {
	Info struct {
		RunID          string   `json:"run_id"`
		RunName        string   `json:"run_name"`
		ExperimentID   string   `json:"experiment_id"`
		UserID         string   `json:"user_id"`
		Status         string   `json:"status"`
		StartTime      wireTime `json:"start_time"`
		EndTime        wireTime `json:"end_time"`
		ArtifactURI    string   `json:"artifact_uri"`
		LifecycleStage string   `json:"lifecycle_stage"`
	} `json:"info"`
	Data struct {
		Metrics []mlflowMetric `json:"metrics"`
		Params  []keyValue     `json:"params"`
		Tags    []keyValue     `json:"tags"`
	} `json:"data"`
	Inputs struct {
		DatasetInputs []struct {
			Tags    []keyValue `json:"tags"`
			Dataset struct {
				Name       string `json:"name"`
				Digest     string `json:"digest"`
				SourceType string `json:"source_type"`
				Source     string `json:"source"`
			} `json:"dataset"`
		} `json:"dataset_inputs"`
	} `json:"inputs"`
}

type mlflowMetric struct {
	Key       string    `json:"key"`
	Value     wireFloat `json:"value"`
	Timestamp wireTime  `json:"timestamp"`
	Step      int64     `json:"step"`
}

// name is the run's name, from info or, for older servers, the mlflow.runName tag.
func (r *mlflowRun) name() string {
	if r.Info.RunName != "" {
		return r.Info.RunName
	}
	for _, t := range r.Data.Tags {
		if t.Key == "mlflow.runName" {
			return t.Value
		}
	}
	return ""
}

// latestMetrics keeps the latest value of each key (highest step, then timestamp), by key.
func (r *mlflowRun) latestMetrics() []mlflowMetric {
	latest := map[string]mlflowMetric{}
	for _, m := range r.Data.Metrics {
		cur, ok := latest[m.Key]
		if !ok || m.Step > cur.Step || (m.Step == cur.Step && m.Timestamp.After(cur.Timestamp.Time)) {
			latest[m.Key] = m
		}
	}
	out := make([]mlflowMetric, 0, len(latest))
	for _, m := range latest {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func runsCommand(lookup config.LookupFunc) *cobra.Command {
	opts := &clientOptions{}
	root := &cobra.Command{
		Use:   "runs",
		Short: "List and inspect experiment runs in the registry; reproduce one with the trainer",
		Long: `Lists and inspects experiment runs through the registry's MLflow REST API, and retrains a
run from its stored snapshot with the trainer.
The registry is --registry-url, else $` + registryService.urlEnv() + `, else ` + registryService.defaultURL() + `;
the bearer token is --token, else $` + tokenEnv + `.`,
		Example: `  flywheel runs list --experiment fraud
  flywheel runs show 4f1c2a9e0b7d4c3f -o json
  flywheel runs reproduce 4f1c2a9e0b7d4c3f`,
	}
	opts.addFlags(root, registryService)
	root.AddCommand(runsListCommand(opts, lookup), runsShowCommand(opts, lookup), runsReproduceCommand(opts, lookup))
	return root
}

func runsListCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	var experiment, filter string
	var orderBy []string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List an experiment's active runs, following pages up to --max",
		Example: `  flywheel runs list --experiment fraud --filter "metrics.auc > 0.9" --order-by "metrics.auc DESC"
  flywheel runs list -e 1 --max 500 -o json | jq -r '.[].info.run_id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--max must be at least 1, got %d", limit)
			}
			c, err := opts.client(registryService, lookup)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			expID, err := resolveExperiment(ctx, c, experiment)
			if err != nil {
				return err
			}
			raws, err := searchRuns(ctx, c, expID, filter, orderBy, limit)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), opts.output, raws, func(w io.Writer) error { return printRuns(w, raws, expID) })
		},
	}
	f := cmd.Flags()
	f.StringVarP(&experiment, "experiment", "e", "0", "experiment name or id; 0 is MLflow's Default experiment")
	f.StringVar(&filter, "filter", "", `MLflow search filter, e.g. "metrics.auc > 0.9 and params.model = 'xgb'"`)
	f.StringArrayVar(&orderBy, "order-by", nil, `order clause, e.g. "metrics.auc DESC" (repeatable)`)
	f.IntVar(&limit, "max", 50, "most runs to list")
	return cmd
}

// resolveExperiment turns an experiment name or id into an id. A numeric ref is tried as an id
// first, then as a name (experiments may be named "2024").
func resolveExperiment(ctx context.Context, c *apiClient, ref string) (string, error) {
	if strings.TrimSpace(ref) == "" {
		return "", errors.New("--experiment must not be empty")
	}
	var resp struct {
		Experiment struct {
			ExperimentID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	numeric := strings.Trim(ref, "0123456789") == ""
	if numeric {
		err := c.get(ctx, "/api/2.0/mlflow/experiments/get", url.Values{"experiment_id": {ref}}, &resp)
		if err == nil {
			return cmp.Or(resp.Experiment.ExperimentID, ref), nil
		}
		if !isNotFound(err) {
			return "", err
		}
	}
	err := c.get(ctx, "/api/2.0/mlflow/experiments/get-by-name", url.Values{"experiment_name": {ref}}, &resp)
	if err != nil {
		if numeric && isNotFound(err) {
			return "", fmt.Errorf("no experiment has id or name %q: %w", ref, err)
		}
		return "", err
	}
	if resp.Experiment.ExperimentID == "" {
		return "", fmt.Errorf("registry: experiment %q came back without an experiment_id", ref)
	}
	return resp.Experiment.ExperimentID, nil
}

func isNotFound(err error) bool {
	var re *APIError
	return errors.As(err, &re) && (re.Status == http.StatusNotFound || re.Code == "RESOURCE_DOES_NOT_EXIST")
}

// runsSearchRequest is MLflow's SearchRuns body.
type runsSearchRequest struct {
	ExperimentIDs []string `json:"experiment_ids"`
	Filter        string   `json:"filter,omitempty"`
	OrderBy       []string `json:"order_by,omitempty"`
	MaxResults    int      `json:"max_results"`
	RunViewType   string   `json:"run_view_type"`
	PageToken     string   `json:"page_token,omitempty"`
}

// maxRunsPage is MLflow's default (and a safe) SearchRuns page size.
const maxRunsPage = 1000

func searchRuns(ctx context.Context, c *apiClient, expID, filter string, orderBy []string, limit int) ([]json.RawMessage, error) {
	return collectPages(limit, func(token string, want int) ([]json.RawMessage, string, error) {
		req := runsSearchRequest{
			ExperimentIDs: []string{expID},
			Filter:        filter,
			OrderBy:       orderBy,
			MaxResults:    min(want, maxRunsPage),
			RunViewType:   "ACTIVE_ONLY",
			PageToken:     token,
		}
		var page struct {
			Runs          []json.RawMessage `json:"runs"`
			NextPageToken string            `json:"next_page_token"`
		}
		if err := c.post(ctx, "/api/2.0/mlflow/runs/search", req, &page); err != nil {
			return nil, "", err
		}
		return page.Runs, page.NextPageToken, nil
	})
}

func printRuns(w io.Writer, raws []json.RawMessage, expID string) error {
	if len(raws) == 0 {
		_, err := fmt.Fprintf(w, "no runs in experiment %s\n", expID)
		return err
	}
	t := newTable(w, "RUN ID", "NAME", "STATUS", "START", "METRICS")
	for _, raw := range raws {
		var r mlflowRun
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("registry: decoding a run: %w", err)
		}
		var metrics []string
		for _, m := range r.latestMetrics() {
			metrics = append(metrics, m.Key+"="+m.Value.compact())
		}
		t.row(r.Info.RunID, r.name(), r.Info.Status, r.Info.StartTime.String(), strings.Join(metrics, " "))
	}
	return t.flush()
}

func runsShowCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show a run: info, params, latest metrics, tags and dataset inputs",
		Example: `  flywheel runs show 4f1c2a9e0b7d4c3f
  flywheel runs show 4f1c2a9e0b7d4c3f -o json | jq '.data.metrics'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client(registryService, lookup)
			if err != nil {
				return err
			}
			var resp struct {
				Run json.RawMessage `json:"run"`
			}
			if err := c.get(cmd.Context(), "/api/2.0/mlflow/runs/get", url.Values{"run_id": {args[0]}}, &resp); err != nil {
				return err
			}
			if len(resp.Run) == 0 {
				return fmt.Errorf("registry: run %s: the answer has no run", args[0])
			}
			return emit(cmd.OutOrStdout(), opts.output, resp.Run, func(w io.Writer) error {
				var r mlflowRun
				if err := json.Unmarshal(resp.Run, &r); err != nil {
					return fmt.Errorf("registry: decoding run %s: %w", args[0], err)
				}
				return printRun(w, &r)
			})
		},
	}
}

func printRun(w io.Writer, r *mlflowRun) error {
	kv := newKeyValues(w)
	kv.add("Run ID", r.Info.RunID)
	kv.add("Name", r.name())
	kv.add("Experiment", r.Info.ExperimentID)
	kv.add("Status", r.Info.Status)
	kv.add("User", r.Info.UserID)
	kv.add("Start", r.Info.StartTime.String())
	end := r.Info.EndTime.String()
	if !r.Info.StartTime.IsZero() && !r.Info.EndTime.IsZero() {
		end += " (" + r.Info.EndTime.Sub(r.Info.StartTime.Time).String() + ")"
	}
	kv.add("End", end)
	kv.add("Artifacts", r.Info.ArtifactURI)
	kv.add("Lifecycle", r.Info.LifecycleStage)
	if err := kv.flush(); err != nil {
		return err
	}

	section := func(title string, n int, header []string, rows func(t *table)) error {
		if n == 0 {
			_, err := fmt.Fprintf(w, "\n%s: none\n", title)
			return err
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		t := newTable(&indented{w: w}, header...)
		rows(t)
		return t.flush()
	}
	params := sortedKV(r.Data.Params)
	if err := section("Params", len(params), []string{"KEY", "VALUE"}, func(t *table) {
		for _, p := range params {
			t.row(p.Key, p.Value)
		}
	}); err != nil {
		return err
	}
	metrics := r.latestMetrics()
	if err := section("Metrics (latest)", len(metrics), []string{"KEY", "VALUE", "STEP", "TIME"}, func(t *table) {
		for _, m := range metrics {
			t.row(m.Key, m.Value.String(), fmt.Sprint(m.Step), m.Timestamp.String())
		}
	}); err != nil {
		return err
	}
	tags := sortedKV(r.Data.Tags)
	if err := section("Tags", len(tags), []string{"KEY", "VALUE"}, func(t *table) {
		for _, tag := range tags {
			t.row(tag.Key, tag.Value)
		}
	}); err != nil {
		return err
	}
	inputs := r.Inputs.DatasetInputs
	return section("Dataset inputs", len(inputs), []string{"NAME", "DIGEST", "SOURCE TYPE", "SOURCE", "CONTEXT"}, func(t *table) {
		for _, in := range inputs {
			usage := ""
			for _, tag := range in.Tags {
				if tag.Key == "mlflow.data.context" {
					usage = tag.Value
				}
			}
			d := in.Dataset
			t.row(d.Name, d.Digest, d.SourceType, d.Source, usage)
		}
	})
}

func sortedKV(in []keyValue) []keyValue {
	out := append([]keyValue(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
