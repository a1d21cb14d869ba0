package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/ml/forest"
	"github.com/flywheel-ml/flywheel/ml/forest/lightgbm"
	"github.com/flywheel-ml/flywheel/ml/forest/xgboost"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/services/registry/client"
)

// importedModel reads a model file another tool wrote into a Flywheel artifact.
func importedModel(name, format, file string, categorical []string, threshold float64) (*artifact.Artifact, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var m *forest.Model
	var features []string
	switch format {
	case "lightgbm":
		m, features, err = lightgbm.Parse(bytes.NewReader(data))
	case "xgboost":
		m, features, err = xgboost.Parse(data)
	default:
		return nil, fmt.Errorf("--format %q: lightgbm (model.txt) or xgboost (save_model JSON)", format)
	}
	if err != nil {
		return nil, fmt.Errorf("%s is not a %s model this build reads: %w", file, format, err)
	}
	// --categorical declares features as category codes beyond those the model splits on as
	// categories (FromForest reads m.Categorical)
	if len(categorical) > 0 {
		if len(m.Categorical) < len(features) {
			m.Categorical = append(m.Categorical, make([]bool, len(features)-len(m.Categorical))...)
		}
		for _, c := range categorical {
			i := slices.Index(features, c)
			if i < 0 {
				return nil, fmt.Errorf("--categorical %q: the model has no such feature (it has %s)", c, strings.Join(features, ", "))
			}
			m.Categorical[i] = true
		}
	}
	return artifact.FromForest(name, m, features, threshold)
}

func modelsImportCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	var format, alias, reason string
	var categorical []string
	var threshold float64
	cmd := &cobra.Command{
		Use:   "import NAME FILE --format lightgbm|xgboost",
		Short: "Register a model trained by LightGBM or XGBoost as a version serving can serve",
		Long: `Reads a LightGBM text model (model.txt, save_model) or an XGBoost JSON model (save_model to
.json), converts it to a Flywheel model artifact (its predictions equal the original's: see
ml/README.md, "Imported models"), and registers it as the next version of NAME, with the
artifact's sha256, in a registry run tagged with the source. With --alias the version is
aliased at once (champion needs the promote scope), and serving picks it up.

Inputs keep the model's feature names; serving reads them from the request (an imported model
has no feature-store inputs) and categorical ones as integer codes. Imported versions carry no
reference profile, so the monitor cannot judge their drift.`,
		Example: `  flywheel models import fraud_lgbm model.txt --format lightgbm
  flywheel models import churn model.json --format xgboost --alias challenger --reason "offline AUC 0.91"`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, file := args[0], args[1]
			a, err := importedModel(name, format, file, categorical, threshold)
			if err != nil {
				return err
			}
			body, err := artifact.Encode(a)
			if err != nil {
				return err
			}
			digest := artifact.ContentHash(body)
			rc, err := opts.client(registryService, lookup)
			if err != nil {
				return err
			}
			reg := client.New(rc.base, rc.token, "flywheel-cli", &http.Client{Timeout: opts.timeout})
			ctx := cmd.Context()
			if err := reg.EnsureModel(ctx, name); err != nil {
				return fmt.Errorf("registered model %s: %w", name, rc.unreachable(err))
			}
			exp, err := reg.EnsureExperiment(ctx, name)
			if err != nil {
				return fmt.Errorf("experiment %s: %w", name, err)
			}
			run, err := reg.CreateRun(ctx, exp, "import-"+filepath.Base(file), map[string]string{"flywheel.imported_from": format,
				"flywheel.source_file": filepath.Base(file)})
			if err != nil {
				return fmt.Errorf("registry run: %w", err)
			}
			if err := reg.PutArtifact(ctx, run.ArtifactURI, "model/model.flywheel", body); err != nil {
				return fmt.Errorf("store the artifact: %w", err)
			}
			if err := reg.EndRun(ctx, run.ID, "FINISHED"); err != nil {
				return err
			}
			fields := make([]client.Field, len(a.Signature))
			for i, f := range a.Signature {
				fields[i] = client.Field{Name: f.Name, Type: f.Kind}
			}
			v, err := reg.CreateVersion(ctx, name, client.NewVersion{Source: run.ArtifactURI + "/model", RunID: run.ID,
				Description: fmt.Sprintf("imported from %s (%s)", filepath.Base(file), format),
				Tags:        map[string]string{"flywheel.artifact_sha256": digest, "flywheel.imported_from": format},
				Signature:   fields})
			if err != nil {
				return fmt.Errorf("register the version: %w", err)
			}
			if alias != "" {
				if reason == "" {
					reason = "imported from " + filepath.Base(file)
				}
				if err := reg.MoveAlias(ctx, name, alias, v.Version, reason); err != nil {
					return fmt.Errorf("version %d registered, but moving %s failed: %w", v.Version, alias, err)
				}
			}
			imported := struct {
				Model   string `json:"model"`
				Version int    `json:"version"`
				SHA256  string `json:"sha256"`
				Task    string `json:"task"`
				Inputs  int    `json:"inputs"`
				Alias   string `json:"alias"`
			}{name, v.Version, digest, string(a.Task), len(a.Signature), alias}
			return emit(cmd.OutOrStdout(), opts.output, imported, func(w io.Writer) error {
				fmt.Fprintf(w, "%s version %d: %s %s model, %d inputs, sha256 %s", name, v.Version, format, a.Task, len(a.Signature), digest[:12])
				if alias != "" {
					fmt.Fprintf(w, ", now %s", alias)
				}
				_, err := fmt.Fprintln(w)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "lightgbm or xgboost")
	cmd.Flags().StringSliceVar(&categorical, "categorical", nil, "features to treat as categorical codes beyond those the model's splits say")
	cmd.Flags().Float64Var(&threshold, "threshold", 0.5, "binary models: score at or above → label 1")
	cmd.Flags().StringVar(&alias, "alias", "", "alias the new version at once (champion or challenger)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded with the alias move")
	_ = cmd.MarkFlagRequired("format")
	return cmd
}
