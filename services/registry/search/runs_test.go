package search_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/registry/search"
)

var runColumns = []string{"experiment_id", "run_id", "run_name", "user_id", "status", "lifecycle_stage", "start_time",
	"end_time", "artifact_uri", "metric_keys", "metric_values", "param_keys", "param_values", "tag_keys", "tag_values", "revision"}

// snapshot is one projected write of a run.
type snapshot struct {
	fakeRun
	experiment string
	revision   uint64
}

func (s snapshot) row() []any {
	keys := func(m map[string]string) ([]string, []string) {
		ks := slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		vs := make([]string, len(ks))
		for i, k := range ks {
			vs[i] = m[k]
		}
		return ks, vs
	}
	var mk []string
	var mv []float64
	for k, v := range s.metrics {
		mk, mv = append(mk, k), append(mv, v)
	}
	pk, pv := keys(s.params)
	tk, tv := keys(s.tags)
	var end *int64
	if e, ok := s.attrs["end_time"].(int64); ok {
		end = &e
	}
	a := s.attrs
	return []any{s.experiment, a["run_id"], a["run_name"], a["user_id"], a["status"], a["lifecycle_stage"],
		a["start_time"], end, a["artifact_uri"], mk, mv, pk, pv, tk, tv, s.revision}
}

var (
	names       = []string{"alpha", "Alpha", "ALPHA run", "beta_1", "beta%2", `back\slash`, "über", "Über", "My Run", "my run 2", "", "x.y*z", "it's"}
	users       = []string{"ann", "bob", "Cid"}
	statuses    = []string{"RUNNING", "FINISHED", "FAILED", "KILLED", "SCHEDULED"}
	metricKeys  = []string{"acc", "loss", "val loss", "f1", "m.x"}
	metricVals  = []float64{0, 0.5, 0.9, 1, -1, 0.25, 1e-9, math.NaN(), math.Inf(1), math.Inf(-1), 0.1 + 0.2}
	paramKeys   = []string{"lr", "model", "opt/name", "batch"}
	tagKeys     = []string{"mlflow.runName", "team", "mlflow.source.type", "note"}
	strVals     = []string{"0.1", "0.01", "tree", "Tree", "forest", "a_b", "a%b", "", "LOCAL", "JOB", "blue", "Blue", "My Run", "über", "x\ny", `it's ? -- \`}
	numLits     = []string{"0", "0.5", "0.9", "1", "-1", "1e-9", "0.25", "-0.5", "2", "0.30000000000000004", "0.3"}
	patterns    = []string{"%", "t%", "%e%", "T_ee", `a\%b`, `a\_b`, "a_b", "%ü%", "%Ü%", "x%", "%run%", "%RUN%", `%\%`, `back\slash`, `back\\slash`, "_", ""}
	experiments = []string{"1", "2", "3"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func randomSnapshot(r *rand.Rand, experiment, id string, revision uint64) snapshot {
	start := 1700000000000 + int64(r.IntN(20))*1000 // few distinct: ties exercise the run_id tie-break
	attrs := map[string]any{"run_id": id, "run_name": pick(r, names), "user_id": pick(r, users), "status": pick(r, statuses),
		"lifecycle_stage": "active", "start_time": start, "artifact_uri": "s3://bucket/" + id}
	if r.IntN(5) == 0 {
		attrs["lifecycle_stage"] = "deleted"
	}
	if r.IntN(3) > 0 {
		attrs["end_time"] = start + int64(r.IntN(5))*500
	}
	s := snapshot{fakeRun: fakeRun{attrs: attrs, metrics: map[string]float64{}, params: map[string]string{}, tags: map[string]string{}},
		experiment: experiment, revision: revision}
	for _, k := range metricKeys {
		if r.IntN(10) < 6 {
			s.metrics[k] = pick(r, metricVals)
			if r.IntN(4) == 0 {
				s.metrics[k] = math.Round(r.NormFloat64()*1000) / 1000
			}
		}
	}
	for _, k := range paramKeys {
		if r.IntN(10) < 6 {
			s.params[k] = pick(r, strVals)
		}
	}
	for _, k := range tagKeys {
		if r.IntN(10) < 6 {
			s.tags[k] = pick(r, strVals)
		}
	}
	return s
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func key(k string) string {
	if strings.ContainsAny(k, " ") {
		return `"` + k + `"`
	}
	return k
}

// randomComparison writes one random comparison in MLflow's syntax.
func randomComparison(r *rand.Rand) string {
	strOp := func() string { return pick(r, []string{"=", "!=", "LIKE", "ILIKE"}) }
	strValue := func(op string) string {
		if op == "LIKE" || op == "ILIKE" {
			return sqlString(pick(r, append(patterns, strVals...)))
		}
		return sqlString(pick(r, append(strVals, names...)))
	}
	strList := func(pool []string) string {
		var vs []string
		for range 1 + r.IntN(3) {
			vs = append(vs, sqlString(pick(r, pool)))
		}
		return "(" + strings.Join(vs, ", ") + ")"
	}
	numOp := func() string { return pick(r, []string{"=", "!=", "<", "<=", ">", ">="}) }
	switch r.IntN(12) {
	case 0, 1:
		return "metrics." + key(pick(r, append(metricKeys, "absent"))) + " " + numOp() + " " + pick(r, numLits)
	case 2, 3:
		op := strOp()
		return "params." + key(pick(r, append(paramKeys, "absent"))) + " " + op + " " + strValue(op)
	case 4, 5:
		op := strOp()
		return "tags." + key(pick(r, append(tagKeys, "absent"))) + " " + op + " " + strValue(op)
	case 6:
		if r.IntN(2) == 0 {
			return "attributes.run_name " + pick(r, []string{"IN", "NOT IN"}) + " " + strList(names)
		}
		op := strOp()
		return pick(r, []string{"run_name", `"run name"`}) + " " + op + " " + strValue(op)
	case 7:
		return "status " + pick(r, []string{"IN", "NOT IN"}) + " " + strList(statuses)
	case 8:
		return pick(r, []string{"start_time", "created", "attributes.end_time"}) + " " + numOp() + " " +
			pick(r, []string{"1700000005000", "1700000010000", "1700000010000.5", "1.70000001e12", "0"})
	case 9:
		op := strOp()
		return pick(r, []string{"user_id", "lifecycle_stage"}) + " " + op + " " + sqlString(pick(r, append(users, "active", "deleted", "ANN", "%n%", "A%")))
	case 10:
		return "artifact_uri LIKE " + sqlString("s3://bucket/r0"+fmt.Sprint(r.IntN(10))+"%")
	default:
		return "run_id IN " + strList([]string{"r000", "r001", "r002", "r010", "r100", "nope"})
	}
}

func randomOrder(r *rand.Rand) []string {
	var out []string
	for range r.IntN(3) {
		var id string
		switch r.IntN(4) {
		case 0:
			id = "metrics." + key(pick(r, metricKeys))
		case 1:
			id = "params." + key(pick(r, paramKeys))
		case 2:
			id = "tags." + key(pick(r, tagKeys))
		default:
			id = pick(r, []string{"start_time", "end_time", "run_name", "status", "user_id", "created", "run_id", "lifecycle_stage", "artifact_uri"})
		}
		out = append(out, id+pick(r, []string{"", " ASC", " DESC", " desc"}))
	}
	return out
}

// TestRunsSQLAgreesWithMatch is the differential test: random filters, orders and pages run
// through RunsQuery.SQL on the real ClickHouse must return the same run ids, in the same
// order, as Filter.Match and Less over the newest snapshot of every run.
func TestRunsSQLAgreesWithMatch(t *testing.T) {
	t.Parallel()
	conn, ctx := runsTable(t)
	r := rand.New(rand.NewPCG(7, 11))
	newest := map[string]snapshot{}
	batches := make([][][]any, 4)
	for i := range 200 {
		id, exp := fmt.Sprintf("r%03d", i), pick(r, experiments) // the sorting key (experiment_id, run_id) never changes
		for rev := range uint64(1 + r.IntN(3)) {
			s := randomSnapshot(r, exp, id, 10+rev)
			batches[rev] = append(batches[rev], s.row())
			newest[id] = s
		}
		if r.IntN(4) == 0 { // a stale replay arriving last must not win
			batches[3] = append(batches[3], randomSnapshot(r, exp, id, 1).row())
		}
	}
	for i, b := range batches { // one insert (one part) per batch, so FINAL has to merge
		if err := chx.Insert(ctx, conn, "registry_runs", runColumns, b); err != nil {
			t.Fatalf("insert batch %d: %v", i, err)
		}
	}
	truth := slices.Collect(func(yield func(snapshot) bool) {
		for _, s := range newest {
			if !yield(s) {
				return
			}
		}
	})

	type query struct {
		filter    string
		orderBy   []string
		lifecycle string
		exps      []string
		limit     int
		offset    int
	}
	queries := []query{
		{filter: "", exps: experiments},
		{filter: `metrics.acc > 0.5`, orderBy: []string{"metrics.acc DESC"}, exps: experiments},
		{filter: `metrics.acc != 1`, orderBy: []string{"metrics.loss"}, exps: experiments, lifecycle: "active"},
		{filter: `metrics.rmse < 1 and params.model = "tree"`, exps: experiments},
		{filter: `attributes.status = 'FINISHED'`, orderBy: []string{"end_time DESC"}, exps: []string{"1"}, lifecycle: "deleted"},
		{filter: `tags."mlflow.source.type" = 'LOCAL'`, exps: experiments, limit: 5, offset: 5},
		{filter: `attributes.run_id IN ('r001','r002', 'r003')`, exps: experiments},
		{filter: `attributes.run_name ILIKE '%My Run%'`, exps: experiments},
		{filter: `attributes.run_name ILIKE '%über%'`, orderBy: []string{"run_name"}, exps: experiments},
		{filter: `attributes.start_time > 1700000010000`, orderBy: []string{"created"}, exps: experiments},
		{filter: `params.lr = 'it''s ? -- \'`, exps: experiments},
		{filter: `tags.note LIKE 'x%'`, orderBy: []string{"tags.note DESC", "params.lr"}, exps: experiments},
		{filter: "metrics.`val loss` <= 0.30000000000000004", exps: experiments},
	}
	for range 300 {
		var cs []string
		for range pick(r, []int{1, 1, 1, 2, 2, 3}) {
			cs = append(cs, randomComparison(r))
		}
		q := query{filter: strings.Join(cs, pick(r, []string{" AND ", " and "})), orderBy: randomOrder(r),
			lifecycle: pick(r, []string{"", "active", "deleted"})}
		for _, e := range experiments {
			if r.IntN(3) > 0 {
				q.exps = append(q.exps, e)
			}
		}
		if len(q.exps) == 0 {
			q.exps = experiments[:1]
		}
		if r.IntN(3) == 0 {
			q.limit, q.offset = 1+r.IntN(20), r.IntN(30)
		}
		queries = append(queries, q)
	}

	nonEmpty, failures := 0, 0
	for _, q := range queries {
		f, err := search.ParseFilter(q.filter)
		if err != nil {
			t.Fatalf("%q: %v", q.filter, err)
		}
		orders, err := search.ParseOrderBy(q.orderBy)
		if err != nil {
			t.Fatalf("%q: %v", q.orderBy, err)
		}
		rq := search.RunsQuery{ExperimentIDs: q.exps, Filter: f, Orders: orders, Lifecycle: q.lifecycle, Limit: q.limit, Offset: q.offset}
		sql, args, err := rq.SQL()
		if err != nil {
			t.Fatalf("%q %q: %v", q.filter, q.orderBy, err)
		}
		got := runIDs(ctx, t, conn, sql, args)

		want := expectedRuns(t, truth, rq)
		if len(want) > 0 {
			nonEmpty++
		}
		if !slices.Equal(got, want) {
			failures++
			t.Errorf("filter %q order_by %q lifecycle %q experiments %v limit %d offset %d\nSQL  %s\nargs %q\ngot  %v\nwant %v",
				q.filter, q.orderBy, q.lifecycle, q.exps, q.limit, q.offset, sql, args, got, want)
			if failures == 5 {
				t.FailNow()
			}
		}
	}
	if nonEmpty < len(queries)/3 {
		t.Fatalf("only %d of %d queries matched anything: the test data are too sparse to prove much", nonEmpty, len(queries))
	}
	t.Logf("%d queries, %d with results", len(queries), nonEmpty)
}

// expectedRuns evaluates q in Go over the newest snapshots.
func expectedRuns(t *testing.T, truth []snapshot, q search.RunsQuery) []string {
	f, err := search.Runs.Filter(q.Filter)
	if err != nil {
		t.Fatal(err)
	}
	orders, err := search.Runs.OrderBy(q.Orders)
	if err != nil {
		t.Fatal(err)
	}
	var match []snapshot
	for _, s := range truth {
		if slices.Contains(q.ExperimentIDs, s.experiment) && (q.Lifecycle == "" || s.attrs["lifecycle_stage"] == q.Lifecycle) && f.Match(s) {
			match = append(match, s)
		}
	}
	slices.SortFunc(match, func(a, b snapshot) int {
		switch {
		case search.Less(orders, a, b):
			return -1
		case search.Less(orders, b, a):
			return 1
		}
		return 0
	})
	ids := make([]string, 0, len(match))
	for _, s := range match {
		ids = append(ids, s.attrs["run_id"].(string))
	}
	if q.Limit > 0 {
		ids = ids[min(q.Offset, len(ids)):min(q.Offset+q.Limit, len(ids))]
	}
	return ids
}

// runsTable migrates a database of the test's own, holding registry_runs.
func runsTable(t *testing.T) (driver.Conn, context.Context) {
	t.Helper()
	conn, _ := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	if _, err := chx.Migrate(ctx, conn, schemas.ClickHouseMigrations()); err != nil {
		t.Fatal(err)
	}
	return conn, ctx
}

func runIDs(ctx context.Context, t *testing.T, conn driver.Conn, sql string, args []any) []string {
	t.Helper()
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s %q: %v", sql, args, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestRunsSQLReadsTheNewestSnapshot: conditions that held for an older snapshot of a run,
// or for a stale replay written last, must not select it.
func TestRunsSQLReadsTheNewestSnapshot(t *testing.T) {
	t.Parallel()
	conn, ctx := runsTable(t)
	snap := func(rev uint64, status, stage string, acc float64, tags map[string]string, lr string) [][]any {
		s := snapshot{experiment: "e", revision: rev, fakeRun: fakeRun{
			attrs: map[string]any{"run_id": "s1", "run_name": "n", "user_id": "u", "status": status, "lifecycle_stage": stage,
				"start_time": int64(1), "artifact_uri": "a"},
			metrics: map[string]float64{"acc": acc}, params: map[string]string{"lr": lr}, tags: tags}}
		return [][]any{s.row()}
	}
	for _, rows := range [][][]any{ // one part each, the stale replay last
		snap(5, "RUNNING", "active", 0.9, map[string]string{"team": "red"}, "0.1"),
		snap(6, "FINISHED", "deleted", 0.1, nil, "0.2"),
		snap(1, "RUNNING", "active", 0.95, map[string]string{"team": "red"}, "0.1"),
	} {
		if err := chx.Insert(ctx, conn, "registry_runs", runColumns, rows); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		filter, lifecycle string
		want              []string
	}{
		{"status = 'RUNNING'", "", nil},
		{"status = 'FINISHED'", "", []string{"s1"}},
		{"metrics.acc > 0.5", "", nil},
		{"metrics.acc < 0.5", "", []string{"s1"}},
		{"tags.team = 'red'", "", nil},
		{"params.lr = '0.1'", "", nil},
		{"params.lr = '0.2'", "", []string{"s1"}},
		{"", "active", nil},
		{"", "deleted", []string{"s1"}},
	} {
		f, err := search.ParseFilter(tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		sql, args, err := search.RunsQuery{ExperimentIDs: []string{"e"}, Filter: f, Lifecycle: tc.lifecycle}.SQL()
		if err != nil {
			t.Fatal(err)
		}
		if got := runIDs(ctx, t, conn, sql, args); !slices.Equal(got, tc.want) {
			t.Errorf("%q lifecycle %q: got %v, want %v", tc.filter, tc.lifecycle, got, tc.want)
		}
	}
}

func TestRunsSQL(t *testing.T) {
	t.Parallel()
	f, _ := search.ParseFilter(`metrics.acc > 0.5 and params.model ILIKE 'T%' and status IN ('A', 'B') and created >= 17 and run_name LIKE 'a\b%'`)
	orders, _ := search.ParseOrderBy([]string{"metrics.acc DESC", "tags.team", "end_time"})
	sql, args, err := search.RunsQuery{ExperimentIDs: []string{"1", "2"}, Filter: f, Orders: orders,
		Lifecycle: search.LifecycleActive, Limit: 10, Offset: 20}.SQL()
	if err != nil {
		t.Fatal(err)
	}
	const want = "SELECT run_id FROM registry_runs FINAL WHERE experiment_id IN (?, ?) AND lifecycle_stage = ?" +
		" AND (has(metric_keys, ?) AND metric_values[indexOf(metric_keys, ?)] > ?)" +
		" AND (has(param_keys, ?) AND lowerUTF8(param_values[indexOf(param_keys, ?)]) LIKE lowerUTF8(?))" +
		" AND (status IN (?, ?)) AND (start_time >= ?) AND (run_name LIKE ?)" +
		" ORDER BY multiIf(has(metric_keys, ?) = 0, 2, isNaN(metric_values[indexOf(metric_keys, ?)]), 1, 0), metric_values[indexOf(metric_keys, ?)] DESC," +
		" has(tag_keys, ?) = 0, tag_values[indexOf(tag_keys, ?)] ASC, isNull(end_time), end_time ASC, run_id ASC" +
		" LIMIT ? OFFSET ? SETTINGS optimize_move_to_prewhere = 0"
	wantArgs := []any{"1", "2", "active", "acc", "acc", 0.5, "model", "model", "T%", "A", "B", int64(17), `a\\b%`,
		"acc", "acc", "acc", "team", "team", 10, 20}
	if sql != want || !reflect.DeepEqual(args, wantArgs) {
		t.Fatalf("got  %s\n     %#v\nwant %s\n     %#v", sql, args, want, wantArgs)
	}

	// Keys and values are arguments, never SQL text.
	f, _ = search.ParseFilter(`tags."k'); DROP TABLE x; --?" = 'v''); DROP TABLE y; --?' and run_id IN ('?', '$1')`)
	sql, args, err = search.RunsQuery{ExperimentIDs: []string{"@e"}, Filter: f}.SQL()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sql, "DROP") || strings.Contains(sql, "$1") || strings.Contains(sql, "@e") || len(args) != 6 {
		t.Fatalf("values leaked into the SQL: %s %q", sql, args)
	}

	for _, tc := range []struct {
		q    search.RunsQuery
		want string
	}{
		{search.RunsQuery{}, "search runs: no experiment ids: invalid search expression"},
		{search.RunsQuery{ExperimentIDs: []string{"1"}, Lifecycle: "ACTIVE_ONLY"}, `search runs: lifecycle "ACTIVE_ONLY" is not "active", "deleted" or empty: invalid search expression`},
		{search.RunsQuery{ExperimentIDs: []string{"1"}, Offset: 5}, "search runs: limit 0, offset 5: invalid search expression"},
		{search.RunsQuery{ExperimentIDs: []string{"1"}, Filter: mustParse(t, "foo = 'x'")}, `invalid filter "attributes.foo = 'x'": unknown attribute "foo", valid attributes are artifact_uri, end_time, lifecycle_stage, run_id, run_name, start_time, status, user_id`},
		{search.RunsQuery{ExperimentIDs: []string{"1"}, Filter: mustParse(t, "datasets.name = 'x'")}, `invalid filter "datasets.name = 'x'": runs cannot be filtered by datasets; use attributes, metrics, params, tags`},
		{search.RunsQuery{ExperimentIDs: []string{"1"}, Orders: []search.Order{{Entity: search.Attribute, Key: "nope"}}}, `invalid order_by "attributes.nope ASC": unknown attribute "nope" to order by, valid attributes are artifact_uri, end_time, lifecycle_stage, run_id, run_name, start_time, status, user_id`},
	} {
		_, _, err := tc.q.SQL()
		if err == nil || err.Error() != tc.want || !errors.Is(err, search.ErrInvalid) {
			t.Errorf("got %v\nwant %s", err, tc.want)
		}
	}
}

func mustParse(t *testing.T, s string) search.Filter {
	t.Helper()
	f, err := search.ParseFilter(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
