package cli

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/config"
)

// championAlias is the alias serving follows; moving it needs the promote scope.
const championAlias = "champion"

// mlflowRegisteredModel is the part of an MLflow RegisteredModel the table shows.
type mlflowRegisteredModel struct {
	Name                 string   `json:"name"`
	LastUpdatedTimestamp wireTime `json:"last_updated_timestamp"`
	Aliases              []struct {
		Alias   string     `json:"alias"`
		Version wireString `json:"version"`
	} `json:"aliases"`
}

// mlflowModelVersion is the part of an MLflow ModelVersion the table shows.
type mlflowModelVersion struct {
	Version           wireString `json:"version"`
	CreationTimestamp wireTime   `json:"creation_timestamp"`
	RunID             string     `json:"run_id"`
	Source            string     `json:"source"`
	Aliases           []string   `json:"aliases"`
}

// aliasMove is one alias change as /v1 routes return it.
type aliasMove struct {
	Model    string   `json:"model"`
	Alias    string   `json:"alias"`
	Version  int      `json:"version"` // 0 when the alias was deleted
	Previous int      `json:"previous"`
	Actor    string   `json:"actor"`
	Reason   string   `json:"reason"`
	At       wireTime `json:"at"`
	Revision uint64   `json:"revision"`
}

func versionLabel(v int, zero string) string {
	if v <= 0 {
		return zero
	}
	return strconv.Itoa(v)
}

func modelsCommand(lookup config.LookupFunc) *cobra.Command {
	opts := &registryOptions{}
	root := &cobra.Command{
		Use:   "models",
		Short: "List registered models and versions; promote, roll back and audit aliases",
		Long: `Lists registered models and their versions (MLflow REST API) and moves aliases such as
champion, which serving follows (registry /v1 API; every move is audited).
The registry is --registry-url, else $` + registryURLEnv + `, else ` + defaultRegistryURL + `;
the bearer token is --token, else $` + registryTokenEnv + `. Moving champion needs a token
with the promote scope.`,
	}
	opts.addFlags(root)
	root.AddCommand(
		modelsListCommand(opts, lookup),
		modelsVersionsCommand(opts, lookup),
		modelsPromoteCommand(opts, lookup),
		modelsRollbackCommand(opts, lookup),
		modelsHistoryCommand(opts, lookup),
		modelsValidateCommand(opts, lookup),
		modelsImportCommand(opts, lookup),
	)
	return root
}

// maxModelsPage is MLflow's largest SearchRegisteredModels page.
const maxModelsPage = 1000

func modelsListCommand(opts *registryOptions, lookup config.LookupFunc) *cobra.Command {
	var filter string
	var limit int
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List registered models with their aliases",
		Example: `  flywheel models list --filter "name LIKE 'fraud%'"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--max must be at least 1, got %d", limit)
			}
			c, err := opts.client(lookup)
			if err != nil {
				return err
			}
			raws, err := collectPages(limit, func(token string, want int) ([]json.RawMessage, string, error) {
				q := url.Values{"max_results": {strconv.Itoa(min(want, maxModelsPage))}}
				if filter != "" {
					q.Set("filter", filter)
				}
				if token != "" {
					q.Set("page_token", token)
				}
				var page struct {
					Models        []json.RawMessage `json:"registered_models"`
					NextPageToken string            `json:"next_page_token"`
				}
				err := c.get(cmd.Context(), "/api/2.0/mlflow/registered-models/search", q, &page)
				return page.Models, page.NextPageToken, err
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if opts.output == outputJSON {
				return writeJSONArray(w, raws)
			}
			if len(raws) == 0 {
				_, err := fmt.Fprintln(w, "no registered models")
				return err
			}
			t := newTable(w, "NAME", "ALIASES", "UPDATED")
			for _, raw := range raws {
				var m mlflowRegisteredModel
				if err := json.Unmarshal(raw, &m); err != nil {
					return fmt.Errorf("registry: decoding a registered model: %w", err)
				}
				aliases := make([]string, 0, len(m.Aliases))
				for _, a := range m.Aliases {
					aliases = append(aliases, a.Alias+"="+string(a.Version))
				}
				sort.Strings(aliases)
				t.row(m.Name, strings.Join(aliases, ","), m.LastUpdatedTimestamp.String())
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&filter, "filter", "", `MLflow search filter, e.g. "name LIKE 'fraud%'"`)
	cmd.Flags().IntVar(&limit, "max", 100, "most models to list")
	return cmd
}

// modelVersionsPage is the page size of model version searches.
const modelVersionsPage = 200

func modelsVersionsCommand(opts *registryOptions, lookup config.LookupFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "versions NAME",
		Short: "List every version of a model, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, err := opts.client(lookup)
			if err != nil {
				return err
			}
			raws, err := collectPages(0, func(token string, _ int) ([]json.RawMessage, string, error) {
				q := url.Values{"filter": {nameFilter(name)}, "max_results": {strconv.Itoa(modelVersionsPage)}}
				if token != "" {
					q.Set("page_token", token)
				}
				var page struct {
					Versions      []json.RawMessage `json:"model_versions"`
					NextPageToken string            `json:"next_page_token"`
				}
				err := c.get(cmd.Context(), "/api/2.0/mlflow/model-versions/search", q, &page)
				return page.Versions, page.NextPageToken, err
			})
			if err != nil {
				return err
			}
			versions := make([]mlflowModelVersion, len(raws))
			for i, raw := range raws {
				if err := json.Unmarshal(raw, &versions[i]); err != nil {
					return fmt.Errorf("registry: decoding a version of %s: %w", name, err)
				}
			}
			order := make([]int, len(raws))
			for i := range order {
				order[i] = i
			}
			// Newest first by number; a non-numeric version (none expected) sorts last.
			num := func(i int) int64 {
				n, err := strconv.ParseInt(string(versions[i].Version), 10, 64)
				if err != nil {
					return -1
				}
				return n
			}
			slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(num(b), num(a)) })
			w := cmd.OutOrStdout()
			if opts.output == outputJSON {
				sorted := make([]json.RawMessage, len(order))
				for i, j := range order {
					sorted[i] = raws[j]
				}
				return writeJSONArray(w, sorted)
			}
			if len(order) == 0 {
				_, err := fmt.Fprintf(w, "%s: no versions (is the model registered? see flywheel models list)\n", name)
				return err
			}
			t := newTable(w, "VERSION", "ALIASES", "RUN ID", "CREATED", "SOURCE")
			for _, i := range order {
				v := versions[i]
				aliases := slices.Clone(v.Aliases)
				sort.Strings(aliases)
				t.row(string(v.Version), strings.Join(aliases, ","), v.RunID, v.CreationTimestamp.String(), v.Source)
			}
			return t.flush()
		},
	}
}

// nameFilter is the MLflow filter selecting one model's versions. Registry names never hold
// quotes; a name that does is quoted with the other kind.
func nameFilter(name string) string {
	if strings.Contains(name, "'") {
		return `name="` + name + `"`
	}
	return "name='" + name + "'"
}

func modelsPromoteCommand(opts *registryOptions, lookup config.LookupFunc) *cobra.Command {
	var alias, reason string
	cmd := &cobra.Command{
		Use:   "promote NAME VERSION",
		Short: "Point an alias (champion by default) at a version",
		Example: `  flywheel models promote fraud 3 --reason "auc 0.94 vs 0.92 on last week"
  flywheel models promote fraud 4 --alias challenger`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			version, err := strconv.Atoi(args[1])
			if err != nil || version < 1 {
				return fmt.Errorf("VERSION must be a positive version number, got %q", args[1])
			}
			if alias == "" {
				return errors.New("--alias must not be empty")
			}
			c, err := opts.client(lookup)
			if err != nil {
				return err
			}
			body := struct {
				Version int    `json:"version"`
				Reason  string `json:"reason,omitempty"`
			}{version, reason}
			return moveAlias(cmd, opts, c, escapePath("v1", "models", name, "aliases", alias), body, name, alias)
		},
	}
	cmd.Flags().StringVar(&alias, "alias", championAlias, "alias to move")
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the alias history")
	return cmd
}

func modelsRollbackCommand(opts *registryOptions, lookup config.LookupFunc) *cobra.Command {
	var alias, reason string
	cmd := &cobra.Command{
		Use:     "rollback NAME",
		Short:   "Point an alias (champion by default) back at the version it held before its last move",
		Example: `  flywheel models rollback fraud --reason "precision dropped after promotion"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if alias == "" {
				return errors.New("--alias must not be empty")
			}
			c, err := opts.client(lookup)
			if err != nil {
				return err
			}
			body := struct {
				Reason string `json:"reason,omitempty"`
			}{reason}
			return moveAlias(cmd, opts, c, escapePath("v1", "models", name, "aliases", alias, "rollback"), body, name, alias)
		},
	}
	cmd.Flags().StringVar(&alias, "alias", championAlias, "alias to roll back")
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the alias history")
	return cmd
}

// moveAlias posts an alias move and prints the {"move":...} answer.
func moveAlias(cmd *cobra.Command, opts *registryOptions, c *registryClient, path string, body any, name, alias string) error {
	var resp struct {
		Move json.RawMessage `json:"move"`
	}
	if err := c.post(cmd.Context(), path, body, &resp); err != nil {
		var re *RegistryError
		if errors.As(err, &re) && re.Status == http.StatusForbidden {
			if alias == championAlias {
				return fmt.Errorf("%w (moving %s needs a token with the promote scope)", err, championAlias)
			}
			return fmt.Errorf("%w (the token may not move alias %s)", err, alias)
		}
		return err
	}
	if len(resp.Move) == 0 {
		return fmt.Errorf("registry: moving %s of %s: the answer has no move", alias, name)
	}
	if opts.output == outputJSON {
		return writeJSON(cmd.OutOrStdout(), resp.Move)
	}
	var m aliasMove
	if err := json.Unmarshal(resp.Move, &m); err != nil {
		return fmt.Errorf("registry: decoding the move: %w", err)
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: %s %s → %s (revision %d)\n",
		cmp.Or(m.Model, name), cmp.Or(m.Alias, alias), versionLabel(m.Previous, "none"), versionLabel(m.Version, "deleted"), m.Revision)
	return err
}

func modelsHistoryCommand(opts *registryOptions, lookup config.LookupFunc) *cobra.Command {
	var alias string
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "Show every alias move of a model, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, err := opts.client(lookup)
			if err != nil {
				return err
			}
			var resp struct {
				Moves []json.RawMessage `json:"moves"`
			}
			if err := c.get(cmd.Context(), escapePath("v1", "models", name, "aliases", "history"), nil, &resp); err != nil {
				return err
			}
			raws := []json.RawMessage{}
			var moves []aliasMove
			for _, raw := range resp.Moves {
				var m aliasMove
				if err := json.Unmarshal(raw, &m); err != nil {
					return fmt.Errorf("registry: decoding an alias move of %s: %w", name, err)
				}
				if alias == "" || m.Alias == alias {
					raws, moves = append(raws, raw), append(moves, m)
				}
			}
			w := cmd.OutOrStdout()
			if opts.output == outputJSON {
				return writeJSONArray(w, raws)
			}
			if len(moves) == 0 {
				_, err := fmt.Fprintf(w, "%s: no alias moves\n", name)
				return err
			}
			t := newTable(w, "AT", "ALIAS", "FROM", "TO", "ACTOR", "REASON")
			for _, m := range moves {
				t.row(m.At.String(), m.Alias, versionLabel(m.Previous, "-"), versionLabel(m.Version, "deleted"), m.Actor, m.Reason)
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&alias, "alias", "", "only this alias's moves (default: every alias)")
	return cmd
}
