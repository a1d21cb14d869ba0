package cli

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/config"
)

func featuresCommand(lookup config.LookupFunc) *cobra.Command {
	opts := &clientOptions{}
	root := &cobra.Command{
		Use:   "features",
		Short: "Read the feature store: online values, point-in-time history, views; rebuild with backfill",
		Long: `Calls the features service: the online lookup API (values now, or at a time), point-in-time
correct historical retrieval (each value as of a row's timestamp, never later), the list of
feature views, and the backfill that rebuilds a view from the event log.
The service is --features-url, else $` + featuresService.urlEnv() + `, else ` + featuresService.defaultURL() + `;
the bearer token is --token, else $` + tokenEnv + `.`,
		Example: `  flywheel features views
  flywheel features get card_activity card_id=c-42
  flywheel features historical --view card_activity --row '{"card_id":"c-42","event_timestamp":"2026-11-22T10:00:00Z"}'
  flywheel features backfill --view card_activity`,
	}
	opts.addFlags(root, featuresService)
	root.AddCommand(featuresViewsCommand(opts, lookup), featuresGetCommand(opts, lookup),
		featuresHistoricalCommand(opts, lookup), featuresBackfillCommand(opts, lookup))
	return root
}

func featuresViewsCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	return &cobra.Command{
		Use:     "views",
		Aliases: []string{"list"},
		Short:   "List the feature views the service computes: entities, source stream, TTL, features",
		Example: `  flywheel features views
  flywheel features views -o json | jq -r '.views[].features[].name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.client(featuresService, lookup)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.get(cmd.Context(), "/v1/feature-views", nil, &raw); err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), opts.output, raw, func(w io.Writer) error {
				var got struct {
					Views []struct {
						Name     string   `json:"name"`
						Version  string   `json:"version"`
						Entities []string `json:"entities"`
						Source   string   `json:"source"`
						TTL      string   `json:"ttl"`
						Features []struct {
							Name string `json:"name"`
						} `json:"features"`
					} `json:"views"`
				}
				if err := json.Unmarshal(raw, &got); err != nil {
					return fmt.Errorf("features: decoding the views: %w", err)
				}
				t := newTable(w, "VIEW", "VERSION", "ENTITIES", "SOURCE", "TTL", "FEATURES")
				for _, v := range got.Views {
					names := make([]string, len(v.Features))
					for i, f := range v.Features {
						names[i] = f.Name
					}
					t.row(v.Name, v.Version, strings.Join(v.Entities, ","), v.Source, v.TTL, strings.Join(names, ","))
				}
				return t.flush()
			})
		},
	}
}

// parseKeyValues reads KEY=VALUE arguments into one entity.
func parseKeyValues(args []string) (map[string]any, error) {
	entity := map[string]any{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want KEY=VALUE, e.g. card_id=c-42", a)
		}
		entity[k] = v
	}
	return entity, nil
}

// featureRefs qualifies feature names with the view ("txn_count_1h" → "card_activity:txn_count_1h").
func featureRefs(view string, names []string) []string {
	refs := make([]string, len(names))
	for i, n := range names {
		if !strings.Contains(n, ":") && view != "" {
			n = view + ":" + n
		}
		refs[i] = n
	}
	return refs
}

func featuresGetCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	var names []string
	var at string
	cmd := &cobra.Command{
		Use:   "get VIEW KEY=VALUE [KEY=VALUE...]",
		Short: "Online feature values of an entity, now or --at a time (the lookup API serving uses)",
		Long: `Reads the online store through POST /v1/features/online — the same code serving reads its
features with — for one entity given by its join keys. Every feature of VIEW, or those named
with --features. Each value comes with its status: PRESENT, NOT_FOUND (no state: the default
is shown), NULL_VALUE (an empty window) or OUTSIDE_MAX_AGE (older than the view's TTL).`,
		Example: `  flywheel features get card_activity card_id=c-42
  flywheel features get card_activity card_id=c-42 --features txn_count_1h,amount_avg_24h
  flywheel features get card_activity card_id=c-42 --at 2026-11-22T10:06:00Z -o json`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			view := args[0]
			entity, err := parseKeyValues(args[1:])
			if err != nil {
				return err
			}
			body := map[string]any{"entities": []map[string]any{entity}}
			if len(names) > 0 {
				body["features"] = featureRefs(view, names)
			} else {
				body["feature_service"] = view
			}
			if at != "" {
				t, err := time.Parse(time.RFC3339Nano, at)
				if err != nil {
					return fmt.Errorf("--at %q: want an RFC 3339 time", at)
				}
				body["at"] = t
			}
			c, err := opts.client(featuresService, lookup)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.post(cmd.Context(), "/v1/features/online", body, &raw); err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), opts.output, raw, func(w io.Writer) error {
				var got struct {
					FeatureNames []string `json:"feature_names"`
					Rows         []struct {
						Entity          map[string]any `json:"entity"`
						Values          []any          `json:"values"`
						Statuses        []string       `json:"statuses"`
						EventTimestamps []*time.Time   `json:"event_timestamps"`
					} `json:"rows"`
				}
				if err := json.Unmarshal(raw, &got); err != nil {
					return fmt.Errorf("features: decoding the lookup: %w", err)
				}
				t := newTable(w, "ENTITY", "FEATURE", "VALUE", "STATUS", "EVENT TIME")
				for _, r := range got.Rows {
					ent := formatEntity(r.Entity)
					for i, name := range got.FeatureNames {
						value, status, ts := "", "", ""
						if i < len(r.Values) {
							value = formatValue(r.Values[i])
						}
						if i < len(r.Statuses) {
							status = r.Statuses[i]
						}
						if i < len(r.EventTimestamps) && r.EventTimestamps[i] != nil {
							ts = r.EventTimestamps[i].UTC().Format(time.RFC3339Nano)
						}
						t.row(ent, name, value, status, ts)
					}
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringSliceVar(&names, "features", nil, "features to read (name or view:name; default every feature of VIEW)")
	cmd.Flags().StringVar(&at, "at", "", "read as of this time (RFC 3339; default now)")
	return cmd
}

// formatEntity prints join keys as k=v, sorted.
func formatEntity(e map[string]any) string {
	parts := make([]string, 0, len(e))
	for k, v := range e {
		parts = append(parts, k+"="+formatValue(v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// formatValue prints a JSON value for a table: strings bare, null as "null", numbers as JSON.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func featuresHistoricalCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	var view, file, tsField string
	var names, rows []string
	cmd := &cobra.Command{
		Use:   "historical (--view VIEW | --features VIEW:NAME,...) (--row JSON... | -f FILE)",
		Short: "Point-in-time feature values for entity rows: each as of its row's timestamp, never later",
		Long: `Calls POST /v1/features/historical: for each entity row (its join keys and an
event_timestamp), the features' values as of that time — what the online store held then,
computed by the same code, never from after it (TTL respected, defaults for missing values).
Rows come from --row (repeat it) or -f FILE of NDJSON (- for stdin). One view per call.
The answer is sorted by entity then time; "row" is the row's index in the input.`,
		Example: `  flywheel features historical --view card_activity --row '{"card_id":"c-42","event_timestamp":"2026-11-22T10:00:00Z"}'
  flywheel features historical --features card_activity:txn_count_1h,card_activity:amount_sum_24h -f labels.ndjson -o json
  jq -c '{card_id, event_timestamp: .event_time}' labels.ndjson | flywheel features historical --view card_activity -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (view == "") == (len(names) == 0) {
				return errors.New("give either --view (every feature of the view) or --features")
			}
			entityRows, err := jsonInputs("--row", rows, file, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if len(entityRows) == 0 {
				return errors.New("no entity rows: give them with --row JSON or -f FILE")
			}
			body := map[string]any{"entity_rows": entityRows}
			refs := featureRefs(view, names)
			if view != "" && len(names) == 0 {
				body["feature_service"] = view
			} else {
				body["features"] = refs
			}
			if tsField != "" {
				body["timestamp_field"] = tsField
			}
			c, err := opts.client(featuresService, lookup)
			if err != nil {
				return err
			}
			var lines []json.RawMessage
			err = c.streamNDJSON(cmd.Context(), "/v1/features/historical", body, func(line json.RawMessage) error {
				var failed struct {
					Error *struct {
						Code    string `json:"code"`
						Message string `json:"message"`
					} `json:"error"`
				}
				if json.Unmarshal(line, &failed) == nil && failed.Error != nil {
					return fmt.Errorf("features: the retrieval failed after %d rows: %s %s", len(lines), failed.Error.Code, failed.Error.Message)
				}
				lines = append(lines, slices.Clone(line))
				return nil
			})
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), opts.output, lines, func(w io.Writer) error {
				return printHistorical(w, lines, cmp.Or(tsField, "event_timestamp"))
			})
		},
	}
	cmd.Flags().StringVar(&view, "view", "", "every feature of this view")
	cmd.Flags().StringSliceVar(&names, "features", nil, "features as view:name (comma-separated or repeated)")
	cmd.Flags().StringArrayVar(&rows, "row", nil, `an entity row as JSON, e.g. '{"card_id":"c-42","event_timestamp":"2026-11-22T10:00:00Z"}' (repeatable)`)
	cmd.Flags().StringVarP(&file, "file", "f", "", "NDJSON file of entity rows (- for stdin)")
	cmd.Flags().StringVar(&tsField, "timestamp-field", "", "the rows' timestamp field (default event_timestamp)")
	return cmd
}

// printHistorical prints the retrieval as a table: row, join keys, timestamp, then the
// features (view:name columns) in name order.
func printHistorical(w io.Writer, lines []json.RawMessage, tsField string) error {
	var records []map[string]any
	keys, features := map[string]bool{}, map[string]bool{}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("features: decoding a historical row: %w", err)
		}
		records = append(records, m)
		for k := range m {
			switch {
			case k == "row" || k == tsField:
			case strings.Contains(k, ":"):
				features[k] = true
			default:
				keys[k] = true
			}
		}
	}
	if len(records) == 0 {
		_, err := fmt.Fprintln(w, "no rows")
		return err
	}
	sortedKeys := func(m map[string]bool) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	cols := append(append(append([]string{"row"}, sortedKeys(keys)...), tsField), sortedKeys(features)...)
	header := make([]string, len(cols))
	for i, c := range cols {
		_, name, _ := strings.Cut(c, ":") // the view is the same for every feature column
		header[i] = strings.ToUpper(cmp.Or(name, c))
	}
	t := newTable(w, header...)
	for _, r := range records {
		cells := make([]string, len(cols))
		for i, c := range cols {
			if v, ok := r[c]; ok {
				cells[i] = formatValue(v)
			}
		}
		t.row(cells...)
	}
	return t.flush()
}

func featuresBackfillCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	var view, maxWait string
	cmd := &cobra.Command{
		Use:   "backfill --view VIEW",
		Short: "Rebuild a view's online and offline state from the ClickHouse event log",
		Long: `Rebuilds a feature view's Redis state and ClickHouse updates from the event log, after losing
Redis or for a new view. Live processing of the view pauses meanwhile and resumes after it,
counting every event exactly once. Needs a token with the admin scope when auth is on. The
request waits for the whole backfill: unless --timeout is given it is 10 minutes.`,
		Example: `  flywheel features backfill --view card_activity
  flywheel features backfill --view card_activity --max-wait 2m -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := time.ParseDuration(maxWait); err != nil {
				return fmt.Errorf("--max-wait %q: want a duration such as 30s", maxWait)
			}
			o := *opts
			if !cmd.Flags().Changed("timeout") {
				o.timeout = 10 * time.Minute
			}
			c, err := o.client(featuresService, lookup)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.post(cmd.Context(), "/v1/features/backfill", map[string]string{"view": view, "max_wait": maxWait}, &raw); err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), opts.output, raw, func(w io.Writer) error {
				var rep struct {
					Version     string        `json:"version"`
					Events      int64         `json:"events"`
					Updates     int64         `json:"updates"`
					LateDropped int64         `json:"late_dropped"`
					Entities    int64         `json:"entities"`
					Cut         time.Time     `json:"cut"`
					From        time.Time     `json:"from"`
					Elapsed     time.Duration `json:"elapsed_ns"`
				}
				if err := json.Unmarshal(raw, &rep); err != nil {
					return fmt.Errorf("features: decoding the backfill report: %w", err)
				}
				kv := newKeyValues(w)
				kv.add("View", view+" (version "+rep.Version+")")
				kv.add("Events replayed", fmt.Sprint(rep.Events))
				kv.add("Updates written", fmt.Sprint(rep.Updates))
				kv.add("Late, dropped", fmt.Sprint(rep.LateDropped))
				kv.add("Entities", fmt.Sprint(rep.Entities))
				kv.add("From", rep.From.UTC().Format(time.RFC3339))
				kv.add("Cut", rep.Cut.UTC().Format(time.RFC3339))
				kv.add("Took", rep.Elapsed.Round(time.Millisecond).String())
				return kv.flush()
			})
		},
	}
	cmd.Flags().StringVar(&view, "view", "card_activity", "feature view")
	cmd.Flags().StringVar(&maxWait, "max-wait", "30s", "how long to wait for the event log to catch up")
	return cmd
}
