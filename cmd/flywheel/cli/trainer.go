package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/config"
)

type trainRun struct {
	ID             string `json:"id"`
	Model          string `json:"model"`
	Stage          string `json:"stage"`
	Error          string `json:"error"`
	RegistryRunID  string `json:"registry_run_id"`
	DatasetVersion string `json:"dataset_version"`
	ModelVersion   int    `json:"model_version"`
	Promoted       bool   `json:"promoted"`
	Trigger        struct {
		Kind string `json:"kind"`
	} `json:"trigger"`
}

func trainCommand(lookup config.LookupFunc) *cobra.Command {
	opts := &clientOptions{}
	var reason string
	var wait bool
	cmd := &cobra.Command{
		Use:   "train MODEL",
		Short: "Retrain a model now: dataset, training, gates, promotion",
		Long: `Asks the trainer to retrain MODEL (its spec is schemas/models/MODEL.yaml). A run already in
progress for the model is joined rather than duplicated. With --wait (the default) the
command follows the run's stages and exits non-zero if the run fails.`,
		Example: `  flywheel train fraud
  flywheel train fraud --reason "new labels" -o json
  flywheel train fraud --wait=false`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client(trainerService, lookup)
			if err != nil {
				return err
			}
			var started struct {
				Run     json.RawMessage `json:"run"`
				Outcome string          `json:"outcome"`
			}
			if err := c.post(cmd.Context(), "/v1/train", map[string]string{"model": args[0], "reason": reason}, &started); err != nil {
				return err
			}
			raw := started.Run
			var run trainRun
			if err := json.Unmarshal(raw, &run); err != nil {
				return fmt.Errorf("trainer: decoding the run: %w", err)
			}
			progress := cmd.ErrOrStderr()
			fmt.Fprintf(progress, "run %s of %s: %s\n", run.ID, run.Model, started.Outcome)
			last := ""
			for wait && run.Stage != "succeeded" && run.Stage != "failed" {
				if run.Stage != last {
					fmt.Fprintf(progress, "  %s\n", run.Stage)
					last = run.Stage
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(time.Second):
				}
				var got struct {
					Run json.RawMessage `json:"run"`
				}
				if err := c.get(cmd.Context(), "/v1/train/runs/"+url.PathEscape(run.ID), nil, &got); err != nil {
					return err
				}
				raw = got.Run
				if err := json.Unmarshal(raw, &run); err != nil {
					return fmt.Errorf("trainer: decoding the run: %w", err)
				}
			}
			err = emit(cmd.OutOrStdout(), opts.output, raw, func(w io.Writer) error {
				switch run.Stage {
				case "succeeded":
					verdict := "left as challenger (see the run's flywheel.outcome tag)"
					if run.Promoted {
						verdict = "promoted to champion"
					}
					_, err := fmt.Fprintf(w, "version %d of %s %s; registry run %s, dataset %s\n", run.ModelVersion, run.Model, verdict, run.RegistryRunID, run.DatasetVersion)
					return err
				case "failed":
					return nil
				}
				_, err := fmt.Fprintf(w, "run %s of %s is %s: follow it with flywheel train %s (joins the run)\n", run.ID, run.Model, run.Stage, run.Model)
				return err
			})
			if err != nil {
				return err
			}
			if run.Stage == "failed" {
				return fmt.Errorf("run %s failed: %s", run.ID, run.Error)
			}
			return nil
		},
	}
	opts.addFlags(cmd, trainerService)
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded with the run")
	cmd.Flags().BoolVar(&wait, "wait", true, "follow the run until it ends")
	return cmd
}

type gateResult struct {
	Metric    string   `json:"metric"`
	Candidate float64  `json:"candidate"`
	Champion  *float64 `json:"champion"`
	Passed    bool     `json:"passed"`
	Failures  []string `json:"failures"`
}

func modelsValidateCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	var candidate int
	cmd := &cobra.Command{
		Use:   "validate NAME --candidate VERSION",
		Short: "Apply the model's promotion gates to a version; exit 1 when any gate fails",
		Long: `Scores the candidate version and the current champion on the holdout of a dataset built
now and applies the gates of schemas/models/NAME.yaml (MLflow MetricThreshold semantics).
Exits 0 when every gate passes and 1 otherwise, listing the failing gates, so any CI system
can gate a deployment on it.`,
		Example: `  flywheel models validate fraud --candidate 7
  flywheel models validate fraud --candidate 7 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if candidate < 1 {
				return fmt.Errorf("--candidate must name a version (1 or more)")
			}
			c, err := opts.client(trainerService, lookup)
			if err != nil {
				return err
			}
			var v struct {
				Passed   bool         `json:"passed"`
				Champion int          `json:"champion"`
				Rows     int          `json:"holdout_rows"`
				Gates    []gateResult `json:"gates"`
			}
			var raw json.RawMessage
			path := "/v1/models/" + url.PathEscape(args[0]) + "/validate"
			if err := c.post(cmd.Context(), path, map[string]int{"candidate": candidate}, &raw); err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("trainer: decoding the validation: %w", err)
			}
			err = emit(cmd.OutOrStdout(), opts.output, raw, func(w io.Writer) error {
				against := "no champion: thresholds only"
				if v.Champion > 0 {
					against = fmt.Sprintf("against champion version %d", v.Champion)
				}
				fmt.Fprintf(w, "%s version %d, %s, on %d holdout rows\n", args[0], candidate, against, v.Rows)
				t := newTable(w, "GATE", "CANDIDATE", "CHAMPION", "RESULT")
				for _, g := range v.Gates {
					champ, result := "-", "pass"
					if g.Champion != nil {
						champ = fmt.Sprintf("%.4f", *g.Champion)
					}
					if !g.Passed {
						result = "FAIL: " + strings.Join(g.Failures, "; ")
					}
					t.row(g.Metric, fmt.Sprintf("%.4f", g.Candidate), champ, result)
				}
				return t.flush()
			})
			if err != nil {
				return err
			}
			if !v.Passed {
				var failed []string
				for _, g := range v.Gates {
					if !g.Passed {
						failed = append(failed, g.Metric)
					}
				}
				return fmt.Errorf("version %d of %s fails the gates: %s", candidate, args[0], strings.Join(failed, ", "))
			}
			return nil
		},
	}
	opts.addURLFlag(cmd.Flags(), trainerService)
	cmd.Flags().IntVar(&candidate, "candidate", 0, "the version to validate")
	return cmd
}

func runsReproduceCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reproduce RUN_ID",
		Short: "Retrain a run's model from its stored dataset snapshot and spec; exit 1 unless bit-identical",
		Long: `Asks the trainer to retrain the registry run's model from the dataset snapshot and spec stored
with the run, and compares the new artifact's sha256 with the original's. Exits 1 unless they
are identical.`,
		Example: `  flywheel runs reproduce 4f1c2a9e0b7d4c3f
  flywheel runs reproduce 4f1c2a9e0b7d4c3f -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.client(trainerService, lookup)
			if err != nil {
				return err
			}
			var r struct {
				Original  string `json:"original_sha256"`
				Retrained string `json:"retrained_sha256"`
				Identical bool   `json:"identical"`
				Rows      int    `json:"rows"`
			}
			var raw json.RawMessage
			if err := c.post(cmd.Context(), "/v1/runs/"+url.PathEscape(args[0])+"/reproduce", map[string]any{}, &raw); err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("trainer: decoding the reproduction: %w", err)
			}
			err = emit(cmd.OutOrStdout(), opts.output, raw, func(w io.Writer) error {
				verdict := "identical"
				if !r.Identical {
					verdict = "DIFFERENT"
				}
				_, err := fmt.Fprintf(w, "retrained from %d snapshot rows\noriginal  sha256 %s\nretrained sha256 %s\n%s\n", r.Rows, r.Original, r.Retrained, verdict)
				return err
			})
			if err != nil {
				return err
			}
			if !r.Identical {
				return fmt.Errorf("run %s did not reproduce bit for bit", args[0])
			}
			return nil
		},
	}
	opts.addURLFlag(cmd.Flags(), trainerService)
	return cmd
}
