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
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

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
	Tags              []keyValue `json:"tags"`
}

// tag is the value of the version's tag key, or "".
func (v *mlflowModelVersion) tag(key string) string {
	for _, t := range v.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
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
	opts := &clientOptions{}
	root := &cobra.Command{
		Use:   "models",
		Short: "List registered models and versions; import, validate, promote, roll back and audit",
		Long: `Lists registered models and their versions (MLflow REST API) and moves aliases such as
champion, which serving follows (registry /v1 API; every move is audited).
The registry is --registry-url, else $` + registryService.urlEnv() + `, else ` + registryService.defaultURL() + `;
the bearer token is --token, else $` + tokenEnv + `. Moving champion needs a token
with the promote scope.`,
		Example: `  flywheel models list
  flywheel models versions fraud
  flywheel models promote fraud 3 --reason "auc 0.94 vs 0.92"
  flywheel models rollback fraud
  flywheel models history fraud -o json`,
	}
	opts.addFlags(root, registryService)
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

func modelsListCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	var filter string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List registered models with their aliases",
		Example: `  flywheel models list
  flywheel models list --filter "name LIKE 'fraud%'" -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--max must be at least 1, got %d", limit)
			}
			c, err := opts.client(registryService, lookup)
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
			return emit(cmd.OutOrStdout(), opts.output, raws, func(w io.Writer) error {
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
			})
		},
	}
	cmd.Flags().StringVar(&filter, "filter", "", `MLflow search filter, e.g. "name LIKE 'fraud%'"`)
	cmd.Flags().IntVar(&limit, "max", 100, "most models to list")
	return cmd
}

// modelVersionsPage is the page size of model version searches.
const modelVersionsPage = 200

// searchVersions returns every version of the model, newest first, each as the registry sent
// it and decoded.
func searchVersions(ctx context.Context, c *apiClient, name string) ([]json.RawMessage, []mlflowModelVersion, error) {
	raws, err := collectPages(0, func(token string, _ int) ([]json.RawMessage, string, error) {
		q := url.Values{"filter": {nameFilter(name)}, "max_results": {strconv.Itoa(modelVersionsPage)}}
		if token != "" {
			q.Set("page_token", token)
		}
		var page struct {
			Versions      []json.RawMessage `json:"model_versions"`
			NextPageToken string            `json:"next_page_token"`
		}
		err := c.get(ctx, "/api/2.0/mlflow/model-versions/search", q, &page)
		return page.Versions, page.NextPageToken, err
	})
	if err != nil {
		return nil, nil, err
	}
	versions := make([]mlflowModelVersion, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &versions[i]); err != nil {
			return nil, nil, fmt.Errorf("registry: decoding a version of %s: %w", name, err)
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
	sortedRaw, sorted := make([]json.RawMessage, len(order)), make([]mlflowModelVersion, len(order))
	for i, j := range order {
		sortedRaw[i], sorted[i] = raws[j], versions[j]
	}
	return sortedRaw, sorted, nil
}

func modelsVersionsCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "versions NAME",
		Short: "List every version of a model, newest first",
		Example: `  flywheel models versions fraud
  flywheel models versions fraud -o json | jq -r '.[0].version'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, err := opts.client(registryService, lookup)
			if err != nil {
				return err
			}
			raws, versions, err := searchVersions(cmd.Context(), c, name)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), opts.output, raws, func(w io.Writer) error {
				if len(versions) == 0 {
					_, err := fmt.Fprintf(w, "%s: no versions (is the model registered? see flywheel models list)\n", name)
					return err
				}
				t := newTable(w, "VERSION", "ALIASES", "RUN ID", "CREATED", "TRIGGER", "SOURCE")
				for _, v := range versions {
					aliases := slices.Clone(v.Aliases)
					sort.Strings(aliases)
					t.row(string(v.Version), strings.Join(aliases, ","), v.RunID, v.CreationTimestamp.String(), v.tag("flywheel.trigger"), v.Source)
				}
				return t.flush()
			})
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

// parseVersion reads a VERSION argument or flag.
func parseVersion(what, s string) (int, error) {
	version, err := strconv.Atoi(s)
	if err != nil || version < 1 {
		return 0, fmt.Errorf("%s must be a positive version number, got %q", what, s)
	}
	return version, nil
}

func modelsPromoteCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	var alias, reason string
	cmd := &cobra.Command{
		Use:   "promote NAME VERSION",
		Short: "Point an alias (champion by default) at a version",
		Long: `Moves the alias (champion by default, which serving follows and hot-swaps to) to VERSION.
The move is audited with the token's identity and --reason (see flywheel models history).
Moving champion needs a token with the promote scope. To check the gates first:
flywheel models validate NAME --candidate VERSION.`,
		Example: `  flywheel models promote fraud 3 --reason "auc 0.94 vs 0.92 on last week"
  flywheel models promote fraud 4 --alias challenger`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			version, err := parseVersion("VERSION", args[1])
			if err != nil {
				return err
			}
			if alias == "" {
				return errors.New("--alias must not be empty")
			}
			c, err := opts.client(registryService, lookup)
			if err != nil {
				return err
			}
			return moveAlias(cmd, opts, c, name, alias, version, reason)
		},
	}
	cmd.Flags().StringVar(&alias, "alias", championAlias, "alias to move")
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the alias history")
	return cmd
}

func modelsRollbackCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	var alias, reason, to string
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Point champion (or --alias) back at the version it held before its last move",
		Long: `Moves the alias (champion by default) back to the version it pointed at before its last
move, as the alias history records it (flywheel models history NAME); serving hot-swaps to
it. The registry does it in one audited call, with the reason prefixed "rollback: ". With --to
the alias goes to that version instead (an audited move whose reason says it is a rollback).
Rolling back twice returns to where it started. Needs the promote scope for champion.`,
		Example: `  flywheel models rollback fraud --reason "precision dropped after promotion"
  flywheel models rollback fraud --to 2
  flywheel models rollback fraud --alias challenger -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if alias == "" {
				return errors.New("--alias must not be empty")
			}
			version := 0
			if to != "" {
				v, err := parseVersion("--to", to)
				if err != nil {
					return err
				}
				version = v
			}
			c, err := opts.client(registryService, lookup)
			if err != nil {
				return err
			}
			if version > 0 {
				return moveAlias(cmd, opts, c, name, alias, version, strings.TrimSuffix("rollback: "+reason, ": "))
			}
			return moveAlias(cmd, opts, c, name, alias, 0, reason)
		},
	}
	cmd.Flags().StringVar(&alias, "alias", championAlias, "alias to roll back")
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the alias history")
	cmd.Flags().StringVar(&to, "to", "", "roll back to this version instead of the one before the last move")
	return cmd
}

// moveAlias points alias at version (0: the registry's one-call rollback) and prints the
// move the registry answers.
func moveAlias(cmd *cobra.Command, opts *clientOptions, c *apiClient, name, alias string, version int, reason string) error {
	path := escapePath("v1", "models", name, "aliases", alias)
	var body any
	if version > 0 {
		body = struct {
			Version int    `json:"version"`
			Reason  string `json:"reason,omitempty"`
		}{version, reason}
	} else {
		path += "/rollback"
		body = struct {
			Reason string `json:"reason,omitempty"`
		}{reason}
	}
	var resp struct {
		Move json.RawMessage `json:"move"`
	}
	if err := c.post(cmd.Context(), path, body, &resp); err != nil {
		var re *APIError
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
	return emit(cmd.OutOrStdout(), opts.output, resp.Move, func(w io.Writer) error {
		var m aliasMove
		if err := json.Unmarshal(resp.Move, &m); err != nil {
			return fmt.Errorf("registry: decoding the move: %w", err)
		}
		_, err := fmt.Fprintf(w, "%s: %s %s → %s (revision %d)\n",
			cmp.Or(m.Model, name), cmp.Or(m.Alias, alias), versionLabel(m.Previous, "none"), versionLabel(m.Version, "deleted"), m.Revision)
		return err
	})
}

// timelineEntry is one line of a model's history: a version created or an alias moved.
type timelineEntry struct {
	At       time.Time `json:"at"`
	Event    string    `json:"event"` // version_created, alias_moved, alias_deleted
	Model    string    `json:"model"`
	Version  int       `json:"version,omitempty"`  // created, or the alias's new version
	Alias    string    `json:"alias,omitempty"`    // alias events
	Previous int       `json:"previous,omitempty"` // alias events: the version before
	Actor    string    `json:"actor,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	RunID    string    `json:"run_id,omitempty"`   // versions: the run that made it
	Trigger  string    `json:"trigger,omitempty"`  // versions: what started the training (drift:<event id>, schedule, request)
	Dataset  string    `json:"dataset,omitempty"`  // versions: the dataset version it was trained on
	Revision uint64    `json:"revision,omitempty"` // alias events: the registry's audit revision
}

func modelsHistoryCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	var alias string
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "The model's timeline, oldest first: versions created (with their trigger) and alias moves",
		Long: `Shows what happened to a model, oldest first: each version as it was registered (its run,
what triggered the training — drift:<event id>, schedule, request — and its dataset) and each
alias move from the registry's audit (who, why, from which version to which). With --alias
only that alias's moves are shown.`,
		Example: `  flywheel models history fraud
  flywheel models history fraud --alias champion
  flywheel models history fraud -o json | jq -c '.[] | select(.event == "alias_moved")'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, err := opts.client(registryService, lookup)
			if err != nil {
				return err
			}
			var resp struct {
				Moves []aliasMove `json:"moves"`
			}
			if err := c.get(cmd.Context(), escapePath("v1", "models", name, "aliases", "history"), nil, &resp); err != nil {
				return err
			}
			entries := []timelineEntry{}
			if alias == "" {
				_, versions, err := searchVersions(cmd.Context(), c, name)
				if err != nil {
					return err
				}
				for _, v := range versions {
					n, _ := strconv.Atoi(string(v.Version))
					entries = append(entries, timelineEntry{At: v.CreationTimestamp.UTC(), Event: "version_created", Model: name, Version: n,
						RunID: v.RunID, Trigger: v.tag("flywheel.trigger"), Dataset: v.tag("flywheel.dataset_version")})
				}
			}
			for _, m := range resp.Moves {
				if alias != "" && m.Alias != alias {
					continue
				}
				event := "alias_moved"
				if m.Version == 0 {
					event = "alias_deleted"
				}
				entries = append(entries, timelineEntry{At: m.At.UTC(), Event: event, Model: cmp.Or(m.Model, name), Version: m.Version,
					Alias: m.Alias, Previous: m.Previous, Actor: m.Actor, Reason: m.Reason, Revision: m.Revision})
			}
			// Oldest first; at the same instant a version comes before the moves that alias it.
			slices.SortStableFunc(entries, func(a, b timelineEntry) int {
				if c := a.At.Compare(b.At); c != 0 {
					return c
				}
				rank := func(e timelineEntry) int {
					if e.Event == "version_created" {
						return 0
					}
					return 1
				}
				return cmp.Compare(rank(a), rank(b))
			})
			return emit(cmd.OutOrStdout(), opts.output, entries, func(w io.Writer) error {
				if len(entries) == 0 {
					_, err := fmt.Fprintf(w, "%s: no versions or alias moves\n", name)
					return err
				}
				t := newTable(w, "AT", "EVENT", "ALIAS", "FROM", "TO", "BY", "REASON / TRIGGER")
				for _, e := range entries {
					at := wireTime{e.At}.String()
					switch e.Event {
					case "version_created":
						why := e.Trigger
						if e.Dataset != "" {
							why = strings.TrimSpace(why + " dataset " + e.Dataset)
						}
						t.row(at, "version", "", "", strconv.Itoa(e.Version), "run "+e.RunID, why)
					default:
						t.row(at, "alias", e.Alias, versionLabel(e.Previous, "-"), versionLabel(e.Version, "deleted"), e.Actor, e.Reason)
					}
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&alias, "alias", "", "only this alias's moves (default: versions and every alias)")
	return cmd
}
