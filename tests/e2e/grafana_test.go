package e2e_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
)

// The Grafana dashboards of deploy/grafana are only as good as their SQL. This test parses
// every dashboard, checks its structure, expands each query the way Grafana and the
// grafana-clickhouse-datasource plugin would for a 6-hour range (the frontend's
// $__conditionalAll and template variables, then the backend's macros), and runs it through
// the plugin's own client path (clickhouse-go's database/sql driver, native protocol) against
// the real ClickHouse of the test stack: first on empty tables (every panel must say "no
// data", never NaN or an error), then with a few rows in every table, when every panel and
// annotation query must return rows, whose values it checks. Annotation queries (the
// promotion timeline, drift events, retrain runs) run the same way and must return what
// Grafana's annotation support reads: time, text, and optionally timeEnd and tags.

const (
	grafanaDir      = "../../deploy/grafana"
	grafanaPluginID = "grafana-clickhouse-datasource"
	grafanaDSUID    = "flywheel-clickhouse"
)

type grafanaDSRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaDashboard struct {
	file          string
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []grafanaAnnotation `json:"list"`
	} `json:"annotations"`
	Panels []grafanaPanel `json:"panels"`
}

// grafanaAnnotation is an annotation query of the dashboard. Queries of the plugin use
// Grafana's standard annotation support: target is a query like a panel's, whose rows become
// annotations by column name (time, timeEnd, text, tags).
type grafanaAnnotation struct {
	Name       string         `json:"name"`
	BuiltIn    int            `json:"builtIn"`
	Enable     bool           `json:"enable"`
	Datasource *grafanaDSRef  `json:"datasource"`
	Target     *grafanaTarget `json:"target"`
}

// grafanaAnnotationKey is where an annotation's result is kept beside the panels'.
func grafanaAnnotationKey(name string) string { return "annotation: " + name }

type grafanaVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *grafanaDSRef   `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   *string         `json:"allValue"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

type grafanaPanel struct {
	ID         int           `json:"id"`
	Type       string        `json:"type"`
	Title      string        `json:"title"`
	Interval   string        `json:"interval"`
	Datasource *grafanaDSRef `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Options struct {
		XField string `json:"xField"`
	} `json:"options"`
	Targets []grafanaTarget `json:"targets"`
	Panels  []grafanaPanel  `json:"panels"` // a collapsed row's panels
}

type grafanaTarget struct {
	RefID      string        `json:"refId"`
	Datasource *grafanaDSRef `json:"datasource"`
	EditorType string        `json:"editorType"`
	Format     *int          `json:"format"`
	RawSQL     string        `json:"rawSql"`
}

// sqlds formats: 0 = time series (long frames become wide, which needs ascending time and
// one row per time and label set), 1 = table.
const (
	formatTimeSeries = 0
	formatTable      = 1
)

func TestGrafanaDashboards(t *testing.T) {
	dashboards := loadGrafanaDashboards(t)
	checkGrafanaProvisioning(t)

	conn, cfg := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	if _, err := chx.Migrate(ctx, conn, schemas.ClickHouseMigrations()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	// The plugin's connection: database/sql over the native protocol with LZ4 and client
	// info, as pkg/plugin/driver.go of grafana-clickhouse-datasource opens it. Its default
	// database is "default": a query must reach Flywheel's tables through $database.
	db := clickhouse.OpenDB(&clickhouse.Options{
		Addr:        []string{cfg.Addr},
		Auth:        clickhouse.Auth{Database: "default", Username: cfg.User, Password: cfg.Password},
		Protocol:    clickhouse.Native,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		ClientInfo: clickhouse.ClientInfo{Products: []struct{ Name, Version string }{
			{Name: "grafana", Version: "11.6.0"}, {Name: "clickhouse-datasource", Version: "4.15.0"}}},
		DialTimeout: 10 * time.Second,
		ReadTimeout: 60 * time.Second,
	})
	t.Cleanup(func() { _ = db.Close() })
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("connect like the plugin: %v", err)
	}

	now := time.Now().UTC()
	rng := grafanaRange{from: now.Add(-6 * time.Hour), to: now}

	// Empty tables: every query runs, and nothing renders as NaN or Infinity.
	for _, d := range dashboards {
		runGrafanaDashboard(t, db, d, cfg.Database, rng, "empty")
	}

	m0 := now.Truncate(time.Minute).Add(-30 * time.Minute)
	insertGrafanaFixtures(t, conn, m0, now)

	results := map[string]map[string]map[string]grafanaResult{}
	for _, d := range dashboards {
		results[d.UID] = runGrafanaDashboard(t, db, d, cfg.Database, rng, "all")
		results[d.UID+"/first"] = runGrafanaDashboard(t, db, d, cfg.Database, rng, "first")
	}
	if t.Failed() {
		return // the value checks below would only repeat the failures above
	}
	checkGrafanaValues(t, results, m0, rng)
	checkGrafanaTexts(t, results)
}

// loadGrafanaDashboards parses every dashboard and checks what Grafana needs to load it and
// what the plugin needs to run it.
func loadGrafanaDashboards(t *testing.T) []grafanaDashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(grafanaDir, "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s/dashboards (%v)", grafanaDir, err)
	}
	var out []grafanaDashboard
	uids := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Errorf("%s: not valid dashboard JSON: %v", f, err)
			continue
		}
		d.file = filepath.Base(f)
		fail := func(format string, args ...any) { t.Errorf("%s: %s", d.file, fmt.Sprintf(format, args...)) }
		if d.UID == "" || len(d.UID) > 40 {
			fail("uid %q must be set and at most 40 characters", d.UID)
		}
		if other, dup := uids[d.UID]; dup {
			fail("uid %q is also used by %s", d.UID, other)
		}
		uids[d.UID] = d.file
		if d.Title == "" {
			fail("no title")
		}
		if d.SchemaVersion < 36 {
			fail("schemaVersion %d: want 36 or later (datasource references by uid)", d.SchemaVersion)
		}
		vars := map[string]grafanaVariable{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
			if v.Type == "query" && (v.Datasource == nil || v.Datasource.Type != grafanaPluginID || v.Datasource.UID != "${datasource}") {
				fail("variable %s: datasource must be {type: %s, uid: ${datasource}}, got %+v", v.Name, grafanaPluginID, v.Datasource)
			}
		}
		if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || string(v.Query) != strconv.Quote(grafanaPluginID) ||
			v.Current.Value != grafanaDSUID {
			fail("needs a variable datasource of type datasource over %s defaulting to %s", grafanaPluginID, grafanaDSUID)
		}
		if _, ok := vars["database"]; !ok {
			fail("needs a variable database naming Flywheel's ClickHouse database")
		}
		names := map[string]bool{}
		for _, a := range d.Annotations.List {
			if a.BuiltIn == 1 {
				continue // Grafana's own annotations and alerts
			}
			where := fmt.Sprintf("annotation %q", a.Name)
			if a.Name == "" || names[a.Name] {
				fail("%s: needs a name of its own", where)
			}
			names[a.Name] = true
			if a.Datasource == nil || a.Datasource.Type != grafanaPluginID || a.Datasource.UID != "${datasource}" {
				fail("%s: datasource must be {type: %s, uid: ${datasource}}", where, grafanaPluginID)
			}
			tg := a.Target
			if tg == nil || tg.RefID == "" || tg.RawSQL == "" || tg.EditorType != "sql" {
				fail("%s: needs a target with refId, editorType sql and rawSql", where)
				continue
			}
			if tg.Datasource == nil || tg.Datasource.Type != grafanaPluginID || tg.Datasource.UID != "${datasource}" {
				fail("%s: target datasource must be {type: %s, uid: ${datasource}}", where, grafanaPluginID)
			}
			if tg.Format == nil || *tg.Format != formatTable {
				fail("%s: target format must be 1 (table): each row is an annotation", where)
			}
			if grafanaNamesDatabase(tg.RawSQL) {
				fail("%s names the database; use ${database}", where)
			}
			if strings.Contains(tg.RawSQL, "$__interval_s") {
				fail("%s: an annotation query has no panel interval", where)
			}
		}
		ids, titles := map[int]string{}, map[string]bool{}
		for _, p := range flattenGrafanaPanels(d.Panels) {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			if p.ID <= 0 {
				fail("%s: panel id must be positive", where)
			}
			if other, dup := ids[p.ID]; dup {
				fail("%s: id %d is also panel %q", where, p.ID, other)
			}
			ids[p.ID] = p.Title
			if p.Title == "" {
				fail("%s: no title", where)
			}
			if p.Type != "row" {
				if titles[p.Title] {
					fail("%s: another panel has the same title", where)
				}
				titles[p.Title] = true
			}
			if g := p.GridPos; g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				fail("%s: gridPos %+v must have w, h > 0 and fit in 24 columns", where, p.GridPos)
			}
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.Type != grafanaPluginID || p.Datasource.UID != "${datasource}" {
				fail("%s: datasource must be {type: %s, uid: ${datasource}}", where, grafanaPluginID)
			}
			if len(p.Targets) == 0 {
				fail("%s: no query", where)
			}
			for _, tg := range p.Targets {
				if tg.RefID == "" || tg.RawSQL == "" || tg.EditorType != "sql" {
					fail("%s: target %q needs refId, editorType sql and rawSql", where, tg.RefID)
				}
				if tg.Datasource == nil || tg.Datasource.Type != grafanaPluginID || tg.Datasource.UID != "${datasource}" {
					fail("%s: target %s: datasource must be {type: %s, uid: ${datasource}}", where, tg.RefID, grafanaPluginID)
				}
				if tg.Format == nil || (*tg.Format != formatTimeSeries && *tg.Format != formatTable) {
					fail("%s: target %s: format must be 0 (time series) or 1 (table)", where, tg.RefID)
				}
				if grafanaNamesDatabase(tg.RawSQL) {
					fail("%s: target %s names the database; use ${database}", where, tg.RefID)
				}
				// The statistics tables have one row per minute: a shorter interval draws gaps.
				if strings.Contains(tg.RawSQL, "$__interval_s") && grafanaMinInterval(p) < time.Minute {
					fail("%s: uses $__interval_s but its min interval %q is under 1m", where, p.Interval)
				}
			}
		}
		out = append(out, d)
	}
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// grafanaNamesDatabase reports a table reached as flywheel.<table> rather than through
// $database; quoted strings such as the tag key 'flywheel.trigger' do not count.
func grafanaNamesDatabase(sql string) bool {
	return strings.Contains(grafanaQuoted.ReplaceAllString(sql, "''"), "flywheel.")
}

var grafanaQuoted = regexp.MustCompile(`'(?:[^'\\]|\\.)*'`)

func flattenGrafanaPanels(panels []grafanaPanel) []grafanaPanel {
	var out []grafanaPanel
	for _, p := range panels {
		out = append(out, p)
		out = append(out, flattenGrafanaPanels(p.Panels)...)
	}
	return out
}

// checkGrafanaProvisioning checks the provisioning files name the plugin, the uid the
// dashboards default to, the native protocol (the HTTP one fails on ClickHouse 18.16) and
// take the connection from the environment.
func checkGrafanaProvisioning(t *testing.T) {
	t.Helper()
	ds, err := os.ReadFile(filepath.Join(grafanaDir, "provisioning", "datasources", "flywheel-clickhouse.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"type: " + grafanaPluginID, "uid: " + grafanaDSUID, "protocol: native",
		"host: ${FLYWHEEL_CLICKHOUSE_HOST}", "port: ${FLYWHEEL_CLICKHOUSE_PORT}",
		"username: ${FLYWHEEL_CLICKHOUSE_USER}", "password: ${FLYWHEEL_CLICKHOUSE_PASSWORD}"} {
		if !strings.Contains(string(ds), want) {
			t.Errorf("datasource provisioning lacks %q", want)
		}
	}
	dash, err := os.ReadFile(filepath.Join(grafanaDir, "provisioning", "dashboards", "flywheel.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"type: file", "path: "} {
		if !strings.Contains(string(dash), want) {
			t.Errorf("dashboard provisioning lacks %q", want)
		}
	}
}

func grafanaMinInterval(p grafanaPanel) time.Duration {
	if p.Interval == "" {
		return 0
	}
	d, err := time.ParseDuration(p.Interval)
	if err != nil {
		return -1
	}
	return d
}

type grafanaRange struct{ from, to time.Time }

// grafanaVarValue is a variable's selection: all of its options, or some values.
type grafanaVarValue struct {
	def    grafanaVariable
	all    bool
	values []string
}

type grafanaResult struct {
	cols []string
	rows [][]any
}

// runGrafanaDashboard resolves the dashboard's variables in order (each query variable runs
// against ClickHouse), then runs every panel query. Mode "first" selects the first option of
// multi-value variables instead of All, so the IN (...) branch of $__conditionalAll runs too;
// mode "empty" expects time series to have no rows.
func runGrafanaDashboard(t *testing.T, db *sql.DB, d grafanaDashboard, database string, rng grafanaRange, mode string) map[string]map[string]grafanaResult {
	t.Helper()
	first := mode == "first"
	ctx := testenv.Context(t)
	vars := map[string]grafanaVarValue{}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			continue
		case "query":
		default:
			t.Errorf("%s (%s): variable %s: type %s is not emulated by this test", d.file, mode, v.Name, v.Type)
			continue
		}
		var q struct {
			RawSQL string `json:"rawSql"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil || q.RawSQL == "" {
			t.Errorf("%s: variable %s: query must be {editorType: sql, rawSql: ...}: %s", d.file, v.Name, v.Query)
			continue
		}
		expanded, err := expandGrafanaSQL(q.RawSQL, vars, rng, 0)
		if err != nil {
			t.Errorf("%s (%s): variable %s: %v", d.file, mode, v.Name, err)
			continue
		}
		res, err := runGrafanaQuery(ctx, db, expanded, d.UID, 0)
		if err != nil {
			t.Errorf("%s (%s): variable %s does not run on ClickHouse: %v\nSQL:\n%s", d.file, mode, v.Name, err, expanded)
			continue
		}
		var options []string
		for _, row := range res.rows {
			options = append(options, fmt.Sprint(row[0])) // the first column is the value, a second one the text
		}
		val := grafanaVarValue{def: v}
		switch {
		case v.Name == "database":
			if !slices.Contains(options, database) {
				t.Errorf("%s: variable database does not list the test database %s: %v", d.file, database, options)
			}
			val.values = []string{database}
		case v.IncludeAll && !(first && len(options) > 0):
			val.all, val.values = true, options
		case len(options) > 0:
			val.values = options[:1]
		default:
			val.values = []string{""} // Grafana's current value of a variable without options
		}
		vars[v.Name] = val
	}

	out := map[string]map[string]grafanaResult{}
	for _, p := range flattenGrafanaPanels(d.Panels) {
		if p.Type == "row" {
			continue
		}
		interval := max(grafanaMinInterval(p), 20*time.Second) // 6 h over ~1000 points rounds to 20 s
		for _, tg := range p.Targets {
			where := fmt.Sprintf("%s (%s): panel %d %q, query %s", d.file, mode, p.ID, p.Title, tg.RefID)
			expanded, err := expandGrafanaSQL(tg.RawSQL, vars, rng, interval)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			res, err := runGrafanaQuery(ctx, db, expanded, d.UID, p.ID)
			if err != nil {
				t.Errorf("%s does not run on ClickHouse: %v\nSQL:\n%s", where, err, expanded)
				continue
			}
			if problem := checkGrafanaResult(res, *tg.Format, p.Options.XField); problem != "" {
				t.Errorf("%s: %s\nSQL:\n%s", where, problem, expanded)
			}
			if mode == "empty" && *tg.Format == formatTimeSeries && len(res.rows) > 0 {
				t.Errorf("%s: %d rows from empty tables, want none (\"No data\")", where, len(res.rows))
			}
			if mode == "all" && len(res.rows) == 0 {
				t.Errorf("%s: no rows with a few rows in every table: the panel would say \"No data\"\nSQL:\n%s", where, expanded)
			}
			if out[p.Title] == nil {
				out[p.Title] = map[string]grafanaResult{}
			}
			out[p.Title][tg.RefID] = res
		}
	}

	// Annotation queries run like panel queries, over the dashboard's range.
	for _, a := range d.Annotations.List {
		if a.BuiltIn == 1 || a.Target == nil {
			continue
		}
		where := fmt.Sprintf("%s (%s): annotation %q", d.file, mode, a.Name)
		expanded, err := expandGrafanaSQL(a.Target.RawSQL, vars, rng, 0)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		res, err := runGrafanaQuery(ctx, db, expanded, d.UID, 0)
		if err != nil {
			t.Errorf("%s does not run on ClickHouse: %v\nSQL:\n%s", where, err, expanded)
			continue
		}
		if problem := checkGrafanaAnnotation(res); problem != "" {
			t.Errorf("%s: %s\nSQL:\n%s", where, problem, expanded)
		}
		switch {
		case mode == "empty" && len(res.rows) > 0:
			t.Errorf("%s: %d annotations from empty tables, want none", where, len(res.rows))
		case mode == "all" && len(res.rows) == 0:
			t.Errorf("%s: no annotations with a few rows in every table\nSQL:\n%s", where, expanded)
		}
		out[grafanaAnnotationKey(a.Name)] = map[string]grafanaResult{"A": res}
	}
	return out
}

// checkGrafanaAnnotation checks what Grafana's standard annotation support reads from a
// row: a time (a DateTime column named time), a text (a String named text), optionally
// timeEnd (a DateTime, not before time) for a region and tags (a String, comma-separated).
func checkGrafanaAnnotation(res grafanaResult) string {
	if problem := checkGrafanaResult(res, formatTable, ""); problem != "" {
		return problem
	}
	ti, xi := slices.Index(res.cols, "time"), slices.Index(res.cols, "text")
	if ti < 0 || xi < 0 {
		return fmt.Sprintf("an annotation needs columns time and text, got %v", res.cols)
	}
	ei, gi := slices.Index(res.cols, "timeEnd"), slices.Index(res.cols, "tags")
	for _, row := range res.rows {
		ts, ok := row[ti].(time.Time)
		if !ok {
			return fmt.Sprintf("column time is %T, not a DateTime", row[ti])
		}
		if text, ok := row[xi].(string); !ok || text == "" {
			return fmt.Sprintf("column text is %T %v, want a non-empty string", row[xi], row[xi])
		}
		if ei >= 0 {
			end, ok := row[ei].(time.Time)
			if !ok || end.Before(ts) {
				return fmt.Sprintf("column timeEnd is %T %v, want a DateTime not before time %v", row[ei], row[ei], ts)
			}
		}
		if gi >= 0 {
			if _, ok := row[gi].(string); !ok {
				return fmt.Sprintf("column tags is %T, want a comma-separated string", row[gi])
			}
		}
	}
	return ""
}

func runGrafanaQuery(ctx context.Context, db *sql.DB, query, dashboard string, panel int) (grafanaResult, error) {
	// The plugin tags every query with the dashboard and panel in the client info.
	ctx = clickhouse.Context(ctx, clickhouse.WithClientInfo(clickhouse.ClientInfo{
		Comment: []string{"grafana_dashboard:" + dashboard, "grafana_panel:" + strconv.Itoa(panel)}}))
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return grafanaResult{}, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return grafanaResult{}, err
	}
	res := grafanaResult{cols: cols}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return res, err
		}
		res.rows = append(res.rows, vals)
	}
	return res, rows.Err()
}

// checkGrafanaResult finds what would break or mislead a panel: NaN or infinite numbers, and
// time series the plugin cannot turn into series.
func checkGrafanaResult(res grafanaResult, format int, xField string) string {
	for _, row := range res.rows {
		for i, v := range row {
			if f, ok := grafanaFloat(v); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
				return fmt.Sprintf("column %s is %v: the panel would show it instead of a number or \"no data\"", res.cols[i], f)
			}
		}
	}
	if xField != "" && !slices.Contains(res.cols, xField) {
		return fmt.Sprintf("the panel's x field %q is not a column of %v", xField, res.cols)
	}
	if format != formatTimeSeries {
		return ""
	}
	ti := slices.Index(res.cols, "time")
	if ti < 0 {
		return fmt.Sprintf("a time series needs a DateTime column named time, got %v", res.cols)
	}
	seen := map[string]bool{}
	var last time.Time
	for _, row := range res.rows {
		ts, ok := row[ti].(time.Time)
		if !ok {
			return fmt.Sprintf("column time is %T, not a DateTime", row[ti])
		}
		if ts.Before(last) {
			return "rows are not sorted by time: the plugin cannot convert them into series"
		}
		last = ts
		key := ts.String()
		for i, v := range row {
			if s, ok := v.(string); ok {
				key += "\x00" + res.cols[i] + "=" + s
			}
		}
		if seen[key] {
			return fmt.Sprintf("two rows for the same time and labels (%q): the plugin cannot convert them into series", key)
		}
		seen[key] = true
	}
	return ""
}

func grafanaFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case *float64:
		if x != nil {
			return *x, true
		}
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint32:
		return float64(x), true
	case int16:
		return float64(x), true
	case uint16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint8:
		return float64(x), true
	}
	return 0, false
}

var (
	grafanaTemplateVar = regexp.MustCompile(`\$\{(\w+)(?::([^}]+))?\}|\$(\w+)`)
	grafanaMacro       = regexp.MustCompile(`\$__(\w+)\b`)
)

// expandGrafanaSQL does what happens to a query between the dashboard and ClickHouse: the
// plugin's frontend resolves $__conditionalAll and the template variables (Grafana's
// formats; the plugin's own default quotes multi-value variables), then its backend expands
// the time macros. Only the macros that work on ClickHouse 18.16 are accepted.
func expandGrafanaSQL(query string, vars map[string]grafanaVarValue, rng grafanaRange, interval time.Duration) (string, error) {
	// $__conditionalAll(condition, $var): 1=1 when $var selects everything (or nothing).
	const conditional = "$__conditionalAll("
	for i := strings.LastIndex(query, conditional); i >= 0; i = strings.LastIndex(query, conditional) {
		args, n, err := grafanaMacroArgs(query[i+len(conditional)-1:])
		if err != nil || len(args) != 2 {
			return "", fmt.Errorf("$__conditionalAll needs two arguments: %q", query[i:])
		}
		m := grafanaTemplateVar.FindStringSubmatch(strings.TrimSpace(args[1]))
		if m == nil {
			return "", fmt.Errorf("$__conditionalAll: %q is not a variable", args[1])
		}
		name := m[1] + m[3]
		v, ok := vars[name]
		if !ok {
			return "", fmt.Errorf("$__conditionalAll names unknown variable %s", name)
		}
		phrase := args[0]
		if v.all || strings.Join(v.values, ",") == "" {
			phrase = "1=1"
		}
		query = query[:i] + phrase + query[i+len(conditional)-1+n:]
	}

	var err error
	query = grafanaTemplateVar.ReplaceAllStringFunc(query, func(match string) string {
		m := grafanaTemplateVar.FindStringSubmatch(match)
		name, format := m[1]+m[3], m[2]
		if strings.HasPrefix(name, "__") {
			return match // a macro, expanded below
		}
		v, ok := vars[name]
		if !ok {
			err = fmt.Errorf("unknown template variable %s", match)
			return match
		}
		values := v.values
		if v.all && v.def.AllValue != nil && *v.def.AllValue != "" {
			return *v.def.AllValue
		}
		multi := v.def.Multi || v.all
		quote := func(escape func(string) string) string {
			out := make([]string, len(values))
			for i, s := range values {
				out[i] = "'" + escape(s) + "'"
			}
			return strings.Join(out, ",")
		}
		switch format {
		case "":
			if !multi {
				return strings.Join(values, "")
			}
			return quote(func(s string) string { return s }) // the plugin's format(): no escaping
		case "singlequote":
			return quote(func(s string) string { return strings.ReplaceAll(s, "'", `\'`) })
		case "sqlstring":
			return quote(func(s string) string { return strings.ReplaceAll(s, "'", "''") })
		case "raw", "csv":
			return strings.Join(values, ",")
		default:
			err = fmt.Errorf("variable format %s is not emulated by this test", match)
			return match
		}
	})
	if err != nil {
		return "", err
	}

	// The backend's macros (pkg/macros of grafana-clickhouse-datasource).
	from, to := rng.from.Unix(), rng.to.Unix()
	for {
		loc := grafanaMacro.FindStringSubmatchIndex(query)
		if loc == nil {
			return query, nil
		}
		name := query[loc[2]:loc[3]]
		args, n, err := grafanaMacroArgs(query[loc[1]:])
		if err != nil {
			return "", fmt.Errorf("$__%s: %w", name, err)
		}
		var repl string
		switch name {
		case "timeFilter":
			if len(args) != 1 {
				return "", fmt.Errorf("$__timeFilter takes one column, got %q", args)
			}
			repl = fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", args[0], from, args[0], to)
		case "fromTime":
			repl = fmt.Sprintf("toDateTime(%d)", from)
		case "toTime":
			repl = fmt.Sprintf("toDateTime(%d)", to)
		case "interval_s":
			repl = strconv.Itoa(int(max(interval.Seconds(), 1)))
		case "dateFilter":
			if len(args) != 1 {
				return "", fmt.Errorf("$__dateFilter takes one column, got %q", args)
			}
			repl = fmt.Sprintf("%s >= toDate('%s') AND %s <= toDate('%s')", args[0], rng.from.Format("2006-01-02"), args[0], rng.to.Format("2006-01-02"))
		case "timeInterval", "timeInterval_ms":
			return "", fmt.Errorf("$__%s expands to toStartOfInterval, which ClickHouse 18.16 lacks: use intDiv(toUInt32(col), $__interval_s) * $__interval_s", name)
		case "fromTime_ms", "toTime_ms", "timeFilter_ms":
			return "", fmt.Errorf("$__%s expands to fromUnixTimestamp64Milli (DateTime64), which ClickHouse 18.16 lacks", name)
		default:
			return "", fmt.Errorf("macro $__%s is not one the dashboards may use", name)
		}
		query = query[:loc[0]] + repl + query[loc[1]+n:]
	}
}

// grafanaMacroArgs parses a bracketed argument list at the start of s, splitting on commas
// outside nested brackets; it returns the arguments and the length it consumed (0 without a
// list).
func grafanaMacroArgs(s string) ([]string, int, error) {
	if !strings.HasPrefix(s, "(") {
		return nil, 0, nil
	}
	var args []string
	depth, start := 0, 1
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				args = append(args, strings.TrimSpace(s[start:i]))
				return args, i + 1, nil
			}
		case ',':
			if depth == 1 {
				args = append(args, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return nil, 0, fmt.Errorf("missing closing bracket in %q", s)
}

// insertGrafanaFixtures writes a few rows into every table the dashboards read, around m0
// (30 minutes ago), plus rows outside the 6-hour range that no panel may count.
func insertGrafanaFixtures(t *testing.T, conn driver.Conn, m0, now time.Time) {
	t.Helper()
	ctx := testenv.Context(t)
	insert := func(table string, cols []string, rows ...[]any) {
		t.Helper()
		if err := chx.Insert(ctx, conn, table, cols, rows); err != nil {
			t.Fatalf("insert into %s: %v", table, err)
		}
	}
	minute := func(d time.Duration) time.Time { return m0.Add(d) }

	stats := []string{"minute", "stream", "transport", "outcome", "reason", "events"}
	insert("ingest_stats", stats,
		[]any{m0, "transactions", "http", "accepted", "", uint64(60)},
		[]any{m0, "transactions", "kafka", "accepted", "", uint64(50)},
		[]any{m0, "transactions", "http", "rejected", "/amount: minimum", uint64(3)},
		[]any{m0, "transactions", "kafka", "rejected", "/amount: minimum", uint64(2)},
		[]any{m0, "transactions", "http", "rejected", "/currency: enum", uint64(1)},
		[]any{m0, "transactions", "http", "duplicate", "", uint64(4)},
		[]any{minute(time.Minute), "transactions", "http", "accepted", "", uint64(10)},
		[]any{m0, "fraud_labels", "http", "accepted", "", uint64(7)},
		[]any{minute(2 * time.Minute), "fraud_labels", "http", "accepted", "", uint64(3)},
		[]any{m0, "fraud_labels", "http", "rejected", "/is_fraud: type", uint64(1)},
		[]any{minute(-7 * time.Hour), "transactions", "http", "accepted", "", uint64(1000)},
		[]any{minute(-7 * time.Hour), "transactions", "http", "rejected", "/amount: minimum", uint64(500)})
	// A second flush of the same minute and key: SummingMergeTree sums it only at merge time.
	insert("ingest_stats", stats, []any{m0, "transactions", "http", "accepted", "", uint64(40)})

	ingested := m0.Add(10 * time.Second)
	event := func(stream, id string, lag time.Duration) []any {
		et := ingested.Add(-lag)
		return []any{stream, id, et.Truncate(time.Second), et.UnixMilli(), "c-1", uint32(1), `{}`, ingested, ingested.UnixMilli()}
	}
	evCols := []string{"stream", "event_id", "event_time", "event_time_ms", "entity", "schema_version", "payload", "ingested_at", "ingested_at_ms"}
	insert("events", evCols,
		event("transactions", "t-1", time.Second), event("transactions", "t-2", 2*time.Second),
		event("transactions", "t-3", 3*time.Second), event("fraud_labels", "t-1:label", 500*time.Millisecond))
	insert("events", evCols, event("transactions", "t-1", time.Second)) // a replay of t-1

	fsCols := []string{"minute", "view", "updates", "late_dropped", "lookups", "lookup_values", "lookup_defaults", "newest_event_ms"}
	insert("feature_stats", fsCols,
		[]any{m0, "card_activity", uint64(120), uint64(2), uint64(0), uint64(0), uint64(0), minute(50 * time.Second).UnixMilli()},
		[]any{m0, "merchant_activity", uint64(5), uint64(0), uint64(0), uint64(0), uint64(0), minute(-time.Hour).UnixMilli()})
	// The lookup API's rows of the same minute carry no event time.
	insert("feature_stats", fsCols, []any{m0, "card_activity", uint64(0), uint64(0), uint64(10), uint64(130), uint64(13), int64(0)})

	fuCols := []string{"view", "view_version", "entity", "seq", "event_id", "event_time", "event_time_ms", "kinds", "nums", "strs", "written_at"}
	for seq := range int64(3) {
		et := minute(-10 * time.Second)
		insert("feature_updates", fuCols, []any{"card_activity", "v1", "c-1", seq + 1, fmt.Sprintf("t-%d", seq+1), et, et.UnixMilli(),
			[]uint8{1}, []float64{12.5}, []string{""}, minute(5 * time.Second)})
	}

	start := now.Add(-time.Hour).UnixMilli()
	end := start + 120_000
	runCols := []string{"experiment_id", "run_id", "run_name", "user_id", "status", "lifecycle_stage", "start_time", "end_time",
		"artifact_uri", "metric_keys", "metric_values", "param_keys", "param_values", "tag_keys", "tag_values", "revision"}
	run := func(exp, id, name, status, stage string, start int64, end *int64, mk []string, mv []float64, rev uint64) []any {
		return []any{exp, id, name, "alice", status, stage, start, end, "mlflow-artifacts:/" + exp + "/" + id + "/artifacts",
			mk, mv, []string{"lr"}, []string{"0.1"}, []string{}, []string{}, rev}
	}
	old := now.Add(-48 * time.Hour).UnixMilli()
	insert("registry_runs", runCols,
		run("1", "r-aaaaaaaa1", "baseline", "RUNNING", "active", start, nil, []string{"loss"}, []float64{0.9}, 1),
		run("1", "r-bbbbbbbb2", "deleted-run", "FINISHED", "deleted", start+1000, &end, nil, nil, 3),
		run("2", "r-cccccccc3", "old-run", "FINISHED", "active", old, &end, []string{"loss"}, []float64{0.7}, 4))
	// The newest snapshot of r-aaaaaaaa1, not merged yet: FINAL must pick it.
	insert("registry_runs", runCols,
		run("1", "r-aaaaaaaa1", "baseline", "FINISHED", "active", start, &end, []string{"auc", "loss"}, []float64{0.81, 0.42}, 2))

	histCols := []string{"run_id", "key", "step", "timestamp", "value"}
	var hist [][]any
	for step, v := range []float64{1.0, 0.8, 0.6, 0.5, 0.42} {
		hist = append(hist, []any{"r-aaaaaaaa1", "loss", int64(step), start + int64(step)*1000, v})
	}
	hist = append(hist, []any{"r-aaaaaaaa1", "loss", int64(2), start + 10_000, 0.65}, // step 2 logged again, later
		[]any{"r-aaaaaaaa1", "auc", int64(4), start + 4000, 0.81})
	insert("registry_metric_history", histCols, hist...)

	predCols := []string{"request_id", "model", "version", "alias", "shadow", "entity", "features", "output", "score", "ts", "ts_ms", "latency_us"}
	predBy := func(id string, version uint32, alias string, shadow uint8, score float64, latency uint32) []any {
		ts := minute(time.Second)
		return []any{id, "fraud", version, alias, shadow, "c-1", "{}", "{}", score, ts, ts.UnixMilli(), latency}
	}
	pred := func(id string, score float64, latency uint32) []any {
		return predBy(id, 1, "champion", 0, score, latency)
	}
	insert("predictions", predCols, pred("p-1", 0.1, 1000), pred("p-2", 0.2, 2000), pred("p-3", 0.3, 9000))
	insert("predictions", predCols, pred("p-1", 0.1, 1000)) // a replay
	// Version 2 is the challenger: one canary request served, two requests scored in the
	// shadow (never served: they stay out of the served panels).
	insert("predictions", predCols, predBy("p-4", 2, "challenger", 0, 0.4, 4000),
		predBy("p-1#shadow", 2, "challenger", 1, 0.15, 3000), predBy("p-2#shadow", 2, "challenger", 1, 0.25, 5000))

	driftCols := []string{"model", "version", "kind", "feature", "method", "window_start", "window_end", "n", "score", "threshold", "drifted", "computed_at"}
	drift := func(end time.Time, score float64, drifted uint8, computed time.Time) []any {
		return []any{"fraud", uint32(1), "data", "amount", "psi", end.Add(-time.Hour), end, uint64(500), score, 0.2, drifted, computed}
	}
	insert("drift_metrics", driftCols, drift(m0, 0.1, 0, minute(time.Minute)), drift(minute(5*time.Minute), 0.05, 0, minute(6*time.Minute)))
	insert("drift_metrics", driftCols, drift(m0, 0.3, 1, minute(2*time.Minute))) // the window recomputed
	row := func(end time.Time, kind, feature, method string, score, threshold float64, drifted uint8) []any {
		return []any{"fraud", uint32(1), kind, feature, method, end.Add(-time.Hour), end, uint64(500), score, threshold, drifted, end.Add(time.Minute)}
	}
	insert("drift_metrics", driftCols,
		row(m0, "data", "channel", "linf", 0.01, 0.05, 0),             // a categorical feature of the same window
		row(m0, "data", "", "verdict", 1, 1, 1),                       // the window's verdict: one feature drifted
		row(minute(10*time.Minute), "data", "", "n", 120, 500, 0),     // a window too small for a verdict
		row(m0, "concept", "auc", "hanley_mcneil", 0.70, 0.75, 1),     // concept drift: AUC below its floor
		row(minute(-7*time.Hour), "data", "amount", "psi", 9, 0.2, 1)) // before the range

	// The loop: drift event d → retrain run on it → v2 challenger, then champion → rolled
	// back during the range's last half hour; the challenger alias deleted.
	loop := now.Truncate(time.Minute).Add(-2 * time.Hour)
	evCols2 := []string{"id", "model", "version", "kind", "features", "window_start", "window_end", "n", "detected_at", "event",
		"published", "alerted", "updated_at_ms"}
	dev := func(id string, detected time.Time, published, alerted uint8, updated int64) []any {
		return []any{id, "fraud", uint32(1), "data",
			`[{"feature":"amount","method":"psi","score":0.3,"threshold":0.2},{"feature":"channel","method":"linf","score":0.09,"threshold":0.05}]`,
			detected.Add(-10 * time.Minute), detected.Add(-5 * time.Minute), uint64(800), detected, `{}`, published, alerted, updated}
	}
	insert("drift_events", evCols2, dev("drift-abc", loop, 0, 0, 1), dev("drift-old", minute(-7*time.Hour), 1, 1, 1))
	insert("drift_events", evCols2, dev("drift-abc", loop, 1, 1, 2)) // published and alerted, a newer row

	retrainStart, retrainEnd := loop.Add(time.Minute).UnixMilli(), loop.Add(3*time.Minute).UnixMilli()
	insert("registry_runs", runCols, []any{"1", "r-dddddddd4", "retrain-t1", "trainer", "FINISHED", "active", retrainStart, &retrainEnd,
		"mlflow-artifacts:/1/r-dddddddd4/artifacts", []string{"test_auc", "train_loss"}, []float64{0.93, 0.2}, []string{}, []string{},
		[]string{"flywheel.outcome", "flywheel.trigger"}, []string{"promoted to champion", "drift:drift-abc"}, uint64(5)})

	aliasCols := []string{"model", "model_id", "alias", "version", "previous", "action", "actor", "reason", "run_id", "trigger",
		"event_id", "moved_at", "moved_at_ms", "revision", "audit_seq"}
	moveRow := func(at time.Time, alias string, version, previous uint32, action, actor, reason, run, trigger, event string, rev uint64) []any {
		return []any{"fraud", "m-1", alias, version, previous, action, actor, reason, run, trigger, event, at.Truncate(time.Second), at.UnixMilli(), rev, rev}
	}
	promoted := moveRow(loop.Add(3*time.Minute+5*time.Second), "champion", 2, 1, "moved", "trainer", "run t1 (drift:drift-abc): every gate passed",
		"r-dddddddd4", "drift:drift-abc", "e-3", 3)
	insert("registry_alias_history", aliasCols,
		moveRow(minute(-7*time.Hour), "champion", 1, 0, "moved", "alice", "first model", "r-cccccccc3", "manual", "e-1", 1),
		moveRow(loop.Add(3*time.Minute), "challenger", 2, 0, "moved", "trainer", "run t1: every gate passed", "r-dddddddd4", "drift:drift-abc", "e-2", 2),
		promoted,
		moveRow(minute(8*time.Minute), "champion", 1, 2, "rollback", "oncall", "rollback: latency", "r-cccccccc3", "manual", "e-4", 4),
		moveRow(minute(9*time.Minute), "challenger", 0, 2, "deleted", "oncall", "done", "", "", "e-5", 3))
	insert("registry_alias_history", aliasCols, promoted) // projected again by a second registry process

	perfCols := []string{"model", "version", "metric", "window_start", "window_end", "n", "value", "computed_at"}
	perf := func(end time.Time, v float64, computed time.Time) []any {
		return []any{"fraud", uint32(1), "auc", end.Add(-time.Hour), end, uint64(100), v, computed}
	}
	insert("model_performance", perfCols, perf(minute(-time.Hour), 0.79, minute(-59*time.Minute)), perf(m0, 0.80, minute(time.Minute)))
	insert("model_performance", perfCols, perf(m0, 0.82, minute(2*time.Minute)))
	insert("model_performance", perfCols,
		[]any{"fraud", uint32(2), "auc", m0, minute(5 * time.Minute), uint64(200), 0.9, minute(6 * time.Minute)},
		[]any{"fraud", uint32(1), "n", m0.Add(-time.Hour), m0, uint64(100), 100.0, minute(2 * time.Minute)}) // the label count, not a quality

	skewCols := []string{"model", "version", "feature", "window_start", "window_end", "n", "mismatches", "example", "checked_at"}
	skew := func(end time.Time, feature string, n, mismatches uint64, example string, checked time.Time) []any {
		return []any{"fraud", uint32(1), feature, end.Add(-5 * time.Minute), end, n, mismatches, example, checked}
	}
	insert("skew_checks", skewCols,
		skew(m0, "amount_sum_1h", 100, 0, "", minute(time.Minute)),
		skew(m0, "txn_count_1h", 100, 2, "first check", minute(time.Minute)),
		skew(minute(5*time.Minute), "txn_count_1h", 50, 0, "", minute(6*time.Minute)),
		skew(minute(-7*time.Hour), "txn_count_1h", 100, 100, "before the range", minute(-7*time.Hour)))
	insert("skew_checks", skewCols, skew(m0, "txn_count_1h", 100, 3, "txn_count_1h of c-1: online 3, offline 2", minute(2*time.Minute))) // rechecked
}

// checkGrafanaValues checks that key panels say what the fixture rows imply.
func checkGrafanaValues(t *testing.T, results map[string]map[string]map[string]grafanaResult, m0 time.Time, rng grafanaRange) {
	loop := rng.to.Truncate(time.Minute).Add(-2 * time.Hour) // the drift → retrain → promotion fixtures
	t.Helper()
	get := func(dash, panel string) grafanaResult {
		t.Helper()
		res, ok := results[dash][panel]["A"]
		if !ok {
			t.Fatalf("dashboard %s has no panel %q", dash, panel)
		}
		return res
	}
	type where = map[string]any
	checks := []struct {
		dash, panel, col string
		match            where
		want             float64
	}{
		// Ingest: sums across transports and flushes, per minute, per stream; the row 7 h ago is out.
		{"flywheel-ingest", "Accepted", "accepted", nil, 170},
		{"flywheel-ingest", "Rejected", "rejected", nil, 7},
		{"flywheel-ingest", "Duplicates", "duplicates", nil, 4},
		{"flywheel-ingest", "Rejection rate", "rejection_rate", nil, 7.0 / 181},
		{"flywheel-ingest/first", "Accepted", "accepted", nil, 10}, // stream = fraud_labels
		{"flywheel-ingest/first", "Rejected", "rejected", nil, 1},
		{"flywheel-ingest", "Accepted events per minute", "events_per_minute", where{"time": m0, "stream": "transactions"}, 150},
		{"flywheel-ingest", "Accepted events per minute", "events_per_minute", where{"time": m0.Add(time.Minute), "stream": "transactions"}, 10},
		{"flywheel-ingest", "Accepted events per minute", "events_per_minute", where{"time": m0, "stream": "fraud_labels"}, 7},
		{"flywheel-ingest", "Rejected events per minute", "events_per_minute", where{"time": m0, "stream": "transactions"}, 6},
		{"flywheel-ingest", "Duplicate events per minute", "events_per_minute", where{"time": m0, "stream": "transactions"}, 4},
		{"flywheel-ingest", "Rejection rate per stream", "rejection_rate", where{"time": m0, "stream": "transactions"}, 6.0 / 160},
		{"flywheel-ingest", "Events per minute by outcome and transport", "events_per_minute", where{"time": m0, "series": "accepted / http"}, 107},
		{"flywheel-ingest", "Top rejection reasons", "rejected", where{"stream": "transactions", "reason": "/amount: minimum"}, 5},
		{"flywheel-ingest", "Top 5 rejection reasons per minute", "rejected_per_minute", where{"time": m0, "series": "transactions /amount: minimum"}, 5},
		{"flywheel-ingest", "Ingest lag (ingested_at − event_time)", "worst", where{"time": m0}, 3},
		{"flywheel-ingest", "Ingest lag (ingested_at − event_time)", "p50", where{"time": m0}, 1},
		{"flywheel-ingest", "Events logged per minute", "events_per_minute", where{"time": m0, "stream": "transactions"}, 3},
		{"flywheel-ingest", "Schema versions in use", "events_logged", where{"stream": "transactions"}, 3},
		// Features.
		{"flywheel-features", "Freshness per view", "freshness", where{"view": "card_activity"}, float64(rng.to.Unix() - m0.Add(50*time.Second).Unix())},
		{"flywheel-features", "Freshness per view", "freshness", where{"view": "merchant_activity"}, float64(rng.to.Unix() - m0.Add(-time.Hour).Unix())},
		{"flywheel-features", "Updates applied", "updates_applied", nil, 125},
		{"flywheel-features", "Late events dropped", "late_dropped", nil, 2},
		{"flywheel-features", "Late share", "late_share", nil, 2.0 / 127},
		{"flywheel-features", "Online lookups", "lookups", nil, 10},
		{"flywheel-features", "Default-value rate", "default_rate", nil, 0.1},
		{"flywheel-features", "Views with updates", "views", nil, 2},
		{"flywheel-features", "Updates applied per minute", "updates_per_minute", where{"time": m0, "view": "card_activity"}, 120},
		{"flywheel-features", "Event-time lag at processing", "lag_seconds", where{"time": m0, "view": "card_activity"}, 10},
		{"flywheel-features", "Event-time lag at processing", "lag_seconds", where{"time": m0, "view": "merchant_activity"}, 3660},
		{"flywheel-features", "Default-value rate per view", "default_rate", where{"time": m0, "view": "card_activity"}, 0.1},
		{"flywheel-features", "Offline rows written per minute", "rows_per_minute", where{"time": m0, "view": "card_activity"}, 3},
		{"flywheel-features", "Offline write delay (written_at − event_time)", "p50", where{"time": m0}, 15},
		{"flywheel-features", "Offline store by view version", "entities", where{"view": "card_activity", "view_version": "v1"}, 1},
		// Models: the newest snapshot of a run wins, deleted runs and runs before the range are out.
		{"flywheel-models", "Runs started", "finished", nil, 2}, // baseline and the retrain
		{"flywheel-models", "Runs started", "running", nil, 0},
		{"flywheel-models", "Runs (newest first)", "duration", where{"run_id": "r-aaaaaaaa1", "status": "FINISHED"}, 120},
		{"flywheel-models", "Metric by step: ${run:text}", "metric_value", where{"key": "loss", "step": int64(2)}, 0.65},
		{"flywheel-models", "Metric by step: ${run:text}", "metric_value", where{"key": "loss", "step": int64(4)}, 0.42},
		{"flywheel-models", "Latest metric values by run", "metric_value", where{"key": "auc", "run_id": "r-aaaaaaaa1"}, 0.81},
		// Serving: shadow predictions are counted apart from the served ones.
		{"flywheel-models", "Predictions per minute by version", "predictions_per_minute", where{"time": m0, "model_version": "fraud v1"}, 3},
		{"flywheel-models", "Predictions per minute by version", "predictions_per_minute", where{"time": m0, "model_version": "fraud v2"}, 1},
		{"flywheel-models", "Latency p50 / p99 by version", "p50", where{"time": m0, "model_version": "fraud v1"}, 1.5},   // 1, 1, 2, 9 ms (with the replay)
		{"flywheel-models", "Latency p50 / p99 by version", "p99", where{"time": m0, "model_version": "fraud v1"}, 8.789}, // 8789.99 µs interpolated, in latency_us's integer type
		{"flywheel-models", "Latency p50 / p99 by version", "p50", where{"time": m0, "model_version": "fraud v2"}, 4},
		{"flywheel-models", "Latency p50 / p99 by version", "p99", where{"time": m0, "model_version": "fraud v2"}, 4}, // its shadow scores (3, 5 ms) left out
		{"flywheel-models", "Mean score by version", "mean_score", where{"time": m0, "model_version": "fraud v2"}, 0.4},
		{"flywheel-models", "Shadow predictions per minute", "shadow_per_minute", where{"time": m0, "model_version": "fraud v2"}, 2},
		{"flywheel-models", "Shadow predictions per minute", "shadow_p99_ms", where{"time": m0, "model_version": "fraud v2"}, 4.98},
		{"flywheel-models", "Traffic by model version", "served", where{"version": 1}, 3},
		{"flywheel-models", "Traffic by model version", "shadow_scored", where{"version": 1}, 0},
		{"flywheel-models", "Traffic by model version", "served", where{"version": 2}, 1},
		{"flywheel-models", "Traffic by model version", "shadow_scored", where{"version": 2}, 2},
		{"flywheel-models", "Traffic by model version", "p50_ms", where{"version": 2, "aliases": "challenger"}, 4},
		// Drift: windows are (model, version, kind, window end), too small ones left out.
		{"flywheel-models", "Windows drifted", "drifted_windows", nil, 2}, // data at m0, concept at m0
		{"flywheel-models", "Windows drifted", "windows", nil, 3},
		{"flywheel-models", "Drift score / threshold", "relative_score", where{"time": m0, "series": "fraud v1 data amount psi"}, 1.5},
		{"flywheel-models", "Drift score / threshold", "relative_score", where{"time": m0, "series": "fraud v1 data channel linf"}, 0.2},
		{"flywheel-models", "Drift score and calibrated threshold by feature", "drift_score", where{"time": m0, "series": "fraud v1 amount (psi)"}, 0.3},
		{"flywheel-models", "Drift score and calibrated threshold by feature", "calibrated_threshold", where{"time": m0, "series": "fraud v1 amount (psi)"}, 0.2},
		{"flywheel-models", "Drift score and calibrated threshold by feature", "drift_score", where{"time": m0.Add(5 * time.Minute), "series": "fraud v1 amount (psi)"}, 0.05},
		{"flywheel-models", "Latest drift by feature", "latest_score", where{"feature": "amount"}, 0.05},
		{"flywheel-models", "Latest drift by feature", "score_over_threshold", where{"feature": "amount"}, 0.25},
		{"flywheel-models", "Latest drift by feature", "windows_drifted", where{"feature": "amount"}, 1},
		{"flywheel-models", "Latest drift by feature", "windows", where{"feature": "amount"}, 2},
		{"flywheel-models", "Latest drift by feature", "latest_threshold", where{"feature": "channel"}, 0.05},
		{"flywheel-models", "Drift events", "published", where{"id": "drift-abc"}, 1},
		{"flywheel-models", "Drift events", "n", where{"id": "drift-abc"}, 800},
		// Performance: the latest computation of a window, across versions; n is no quality.
		{"flywheel-models", "Model performance over time", "metric_value", where{"time": m0, "series": "fraud v1 auc"}, 0.82},
		{"flywheel-models", "Model performance over time", "metric_value", where{"time": m0.Add(5 * time.Minute), "series": "fraud v2 auc"}, 0.9},
		{"flywheel-models", "Latest performance per model version", "latest_value", where{"model": "fraud", "version": 1, "metric": "auc"}, 0.82},
		{"flywheel-models", "Latest performance per model version", "latest_value", where{"model": "fraud", "version": 2, "metric": "auc"}, 0.9},
		{"flywheel-models", "Performance across versions", "weighted_mean", where{"version": 1, "metric": "auc"}, 0.805},
		{"flywheel-models", "Performance across versions", "windows", where{"version": 1, "metric": "auc"}, 2},
		{"flywheel-models", "Performance across versions", "labelled", where{"version": 1, "metric": "auc"}, 200},
		{"flywheel-models", "Performance across versions", "weighted_mean", where{"version": 2, "metric": "auc"}, 0.9},
		{"flywheel-models", "AUC against the concept-drift floor", "window_auc", where{"time": m0, "model_version": "fraud v1"}, 0.70},
		{"flywheel-models", "AUC against the concept-drift floor", "auc_floor", where{"time": m0, "model_version": "fraud v1"}, 0.75},
		// Skew: the recheck of a window wins; the row before the range is out.
		{"flywheel-models", "Skew rate", "skew_rate", nil, 3.0 / 250},
		{"flywheel-models", "Skew rate", "values_checked", nil, 250},
		{"flywheel-models", "Skew rate per feature", "skew_rate", where{"time": m0, "series": "fraud v1 txn_count_1h"}, 0.03},
		{"flywheel-models", "Skew rate per feature", "skew_rate", where{"time": m0, "series": "fraud v1 amount_sum_1h"}, 0},
		{"flywheel-models", "Skew by feature", "skew_rate", where{"feature": "txn_count_1h"}, 0.02},
		{"flywheel-models", "Skew by feature", "windows", where{"feature": "txn_count_1h"}, 2},
		{"flywheel-models", "Skew by feature", "mismatched", where{"feature": "txn_count_1h"}, 3},
		// The loop: one drift event, one retrain, one promotion and one rollback in the range
		// (the first champion, 7 hours ago, is out of it but still counts for the aliases).
		{"flywheel-models", "Loop in the range", "drift_events", nil, 1},
		{"flywheel-models", "Loop in the range", "retrain_runs", nil, 1},
		{"flywheel-models", "Loop in the range", "promotions", nil, 1},
		{"flywheel-models", "Loop in the range", "rollbacks", nil, 1},
		{"flywheel-models", "Current aliases", "current_version", where{"alias": "champion"}, 1},
		{"flywheel-models", "Current aliases", "previous_version", where{"alias": "champion"}, 2},
		{"flywheel-models", "Promotion timeline", "version", where{"event_id": "e-3"}, 2},
		{"flywheel-models", "Promotion timeline", "previous", where{"event_id": "e-3"}, 1},
		{"flywheel-models", "Retrain runs", "duration", where{"run_id": "r-dddddddd4"}, 120},
		{"flywheel-models", grafanaAnnotationKey("Retrain runs"), "time", where{"tags": "retrain,finished"}, float64(loop.Add(time.Minute).Unix())},
		{"flywheel-models", grafanaAnnotationKey("Retrain runs"), "timeEnd", where{"tags": "retrain,finished"}, float64(loop.Add(3 * time.Minute).Unix())},
		{"flywheel-models", grafanaAnnotationKey("Promotions and rollbacks"), "time", where{"tags": "champion,rollback"}, float64(m0.Add(8 * time.Minute).Unix())},
		{"flywheel-models", grafanaAnnotationKey("Drift events"), "time", where{"tags": "drift,data"}, float64(loop.Unix())},
	}
	for _, c := range checks {
		res := get(c.dash, c.panel)
		got, err := res.value(c.match, c.col)
		if err != nil {
			t.Errorf("%s / %q: %v\nrows: %v %v", c.dash, c.panel, err, res.cols, res.rows)
			continue
		}
		if math.Abs(got-c.want) > 1e-6*math.Max(1, math.Abs(c.want)) {
			t.Errorf("%s / %q: %s where %v = %v, want %v", c.dash, c.panel, c.col, c.match, got, c.want)
		}
	}

	// Row sets that must hold exactly these keys.
	sets := []struct {
		dash, panel, col string
		want             []string
	}{
		{"flywheel-ingest", "Top rejection reasons", "reason", []string{"/amount: minimum", "/currency: enum", "/is_fraud: type"}},
		{"flywheel-models", "Runs (newest first)", "run_id", []string{"r-aaaaaaaa1", "r-dddddddd4"}},
		{"flywheel-models", "Drifted windows", "feature", []string{"", "amount", "auc"}}, // the verdict, a feature, concept drift
		{"flywheel-models", "Drift score / threshold", "series", []string{"fraud v1 data amount psi", "fraud v1 data channel linf"}},
		{"flywheel-models", "Predictions per minute by version", "model_version", []string{"fraud v1", "fraud v2"}},
		{"flywheel-models", "Shadow predictions per minute", "model_version", []string{"fraud v2"}},
		{"flywheel-models", "Model performance over time", "series", []string{"fraud v1 auc", "fraud v2 auc"}},
		{"flywheel-models", "Current aliases", "alias", []string{"champion"}}, // challenger was deleted
		{"flywheel-models", "Promotion timeline", "event_id", []string{"e-2", "e-3", "e-4", "e-5"}},
		{"flywheel-models", "Promotion timeline", "action", []string{"deleted", "moved", "rollback"}},
		{"flywheel-models", "Drift events", "id", []string{"drift-abc"}},
		{"flywheel-models", "Retrain runs", "run_id", []string{"r-dddddddd4"}},
		{"flywheel-models", "Skew by feature", "feature", []string{"amount_sum_1h", "txn_count_1h"}},
		{"flywheel-models", grafanaAnnotationKey("Promotions and rollbacks"), "tags", []string{"challenger,deleted", "challenger,moved", "champion,moved", "champion,rollback"}},
		{"flywheel-models/first", "Metric by step: ${run:text}", "key", []string{"auc"}}, // metric = auc
	}
	for _, s := range sets {
		res := get(s.dash, s.panel)
		i := slices.Index(res.cols, s.col)
		if i < 0 {
			t.Errorf("%s / %q: no column %s in %v", s.dash, s.panel, s.col, res.cols)
			continue
		}
		var got []string
		for _, row := range res.rows {
			if v := fmt.Sprint(row[i]); !slices.Contains(got, v) {
				got = append(got, v)
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, s.want) {
			t.Errorf("%s / %q: %s values %v, want %v", s.dash, s.panel, s.col, got, s.want)
		}
	}
}

// checkGrafanaTexts checks string cells: the text of annotations and tables built in SQL.
func checkGrafanaTexts(t *testing.T, results map[string]map[string]map[string]grafanaResult) {
	t.Helper()
	texts := []struct {
		dash, panel, col string
		match            map[string]any
		want             string
	}{
		{"flywheel-models", grafanaAnnotationKey("Promotions and rollbacks"), "text", map[string]any{"tags": "champion,moved"},
			"fraud champion: v2 (was v1) · moved by trainer · trigger drift:drift-abc · run r-dddddddd4 · run t1 (drift:drift-abc): every gate passed"},
		{"flywheel-models", grafanaAnnotationKey("Promotions and rollbacks"), "text", map[string]any{"tags": "challenger,deleted"},
			"fraud challenger: deleted (was v2) · deleted by oncall · done"},
		{"flywheel-models", grafanaAnnotationKey("Retrain runs"), "text", map[string]any{"tags": "retrain,finished"},
			"retrain-t1 · FINISHED · trigger drift:drift-abc · promoted to champion"},
		{"flywheel-models", "Drift events", "drifted_features", map[string]any{"id": "drift-abc"}, "amount, channel"},
		{"flywheel-models", "Retrain runs", "trigger", map[string]any{"run_id": "r-dddddddd4"}, "drift:drift-abc"},
		{"flywheel-models", "Retrain runs", "holdout_metrics", map[string]any{"run_id": "r-dddddddd4"}, "test_auc=0.93"},
		{"flywheel-models", "Retrain runs", "outcome", map[string]any{"run_id": "r-dddddddd4"}, "promoted to champion"},
		{"flywheel-models", "Current aliases", "last_action", map[string]any{"alias": "champion"}, "rollback"},
		{"flywheel-models", "Traffic by model version", "aliases", map[string]any{"version": 1}, "champion"},
		{"flywheel-models", "Skew by feature", "latest_example", map[string]any{"feature": "txn_count_1h"}, "txn_count_1h of c-1: online 3, offline 2"},
	}
	for _, c := range texts {
		res, ok := results[c.dash][c.panel]["A"]
		if !ok {
			t.Errorf("dashboard %s has no panel %q", c.dash, c.panel)
			continue
		}
		got, err := res.cell(c.match, c.col)
		if err != nil {
			t.Errorf("%s / %q: %v\nrows: %v %v", c.dash, c.panel, err, res.cols, res.rows)
			continue
		}
		if got != c.want {
			t.Errorf("%s / %q: %s where %v = %q, want %q", c.dash, c.panel, c.col, c.match, got, c.want)
		}
	}
	// The drift event's annotation names its model, kind and drifted features.
	res := results["flywheel-models"][grafanaAnnotationKey("Drift events")]["A"]
	if got, err := res.cell(map[string]any{"tags": "drift,data"}, "text"); err != nil ||
		!strings.HasPrefix(got, "fraud v1: data drift of amount, channel in ") || !strings.HasSuffix(got, "(n 800) · drift-abc") {
		t.Errorf("drift event annotation %q (%v)", got, err)
	}
}

// value returns column col of the one row matching every column in match (times compare
// by instant).
func (r grafanaResult) value(match map[string]any, col string) (float64, error) {
	v, err := r.one(match, col)
	if err != nil {
		return 0, err
	}
	if ts, ok := v.(time.Time); ok {
		return float64(ts.Unix()), nil
	}
	f, ok := grafanaFloat(v)
	if !ok {
		return 0, fmt.Errorf("column %s is %T (%v), not a number", col, v, v)
	}
	return f, nil
}

// cell returns the string in column col of the one row matching every column in match.
func (r grafanaResult) cell(match map[string]any, col string) (string, error) {
	v, err := r.one(match, col)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("column %s is %T (%v), not a string", col, v, v)
	}
	return s, nil
}

// one returns column col of the one row matching every column in match.
func (r grafanaResult) one(match map[string]any, col string) (any, error) {
	ci := slices.Index(r.cols, col)
	if ci < 0 {
		return nil, fmt.Errorf("no column %s", col)
	}
	var found []any
	for _, row := range r.rows {
		ok := true
		for name, want := range match {
			i := slices.Index(r.cols, name)
			if i < 0 {
				return nil, fmt.Errorf("no column %s", name)
			}
			switch w := want.(type) {
			case time.Time:
				got, isTime := row[i].(time.Time)
				ok = ok && isTime && got.Equal(w)
			default:
				ok = ok && fmt.Sprint(row[i]) == fmt.Sprint(w)
			}
		}
		if ok {
			found = append(found, row[ci])
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%d rows match %v, want 1", len(found), match)
	}
	if p, ok := found[0].(*string); ok && p != nil { // a Nullable(String)
		return *p, nil
	}
	return found[0], nil
}
