package search_test

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/flywheel-ml/flywheel/services/registry/search"
)

// fakeRun is a Record over maps.
type fakeRun struct {
	attrs   map[string]any
	metrics map[string]float64
	params  map[string]string
	tags    map[string]string
}

func (r fakeRun) Attr(k string) (any, bool) {
	v, ok := r.attrs[k]
	return v, ok && v != nil
}
func (r fakeRun) Tag(k string) (string, bool)     { v, ok := r.tags[k]; return v, ok }
func (r fakeRun) Metric(k string) (float64, bool) { v, ok := r.metrics[k]; return v, ok }
func (r fakeRun) Param(k string) (string, bool)   { v, ok := r.params[k]; return v, ok }
func (r fakeRun) String() string                  { return r.attrs["run_id"].(string) }

func mustFilter(t *testing.T, s string) search.Filter {
	t.Helper()
	return mustCheck(t, search.Runs, s)
}

func mustCheck(t *testing.T, schema *search.Schema, s string) search.Filter {
	t.Helper()
	f, err := search.ParseFilter(s)
	if err == nil {
		f, err = schema.Filter(f)
	}
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return f
}

func TestLike(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s, pattern  string
		like, ilike bool
	}{
		{"abc", "abc", true, true},
		{"abc", "ABC", false, true},
		{"abc", "a%", true, true},
		{"abc", "%c", true, true},
		{"abc", "%b%", true, true},
		{"abc", "b%", false, false},
		{"abc", "a_c", true, true},
		{"abc", "a_", false, false},
		{"abc", "%", true, true},
		{"", "%", true, true},
		{"", "", true, true},
		{"a", "", false, false},
		{"My Run 7", "%my run%", false, true},
		{"a%b", `a\%b`, true, true},
		{"axb", `a\%b`, false, false},
		{"a_b", `a\_b`, true, true},
		{"axb", `a\_b`, false, false},
		{`a\b`, `a\\b`, true, true},
		{`a\b`, `a\b`, true, true}, // a backslash before anything else is literal
		{`ab`, `a\b`, false, false},
		{`a\`, `a\`, true, true},
		{"ä", "_", true, true},
		{"ÄB", "äb", false, true},
		{"İ", "i", false, false}, // lower case of a different UTF-8 length is not folded (ClickHouse's lowerUTF8)
		{"a.b*c", "a.b*c", true, true},
		{"axb", "a.b", false, false},
		{"x\ny", "x%y", true, true},
		{"aaa", "%a%a%a%", true, true},
		{"aa", "%a%a%a%", false, false},
		{"mississippi", "%iss%pi", true, true},
	} {
		if got := search.Like(tc.s, tc.pattern, false); got != tc.like {
			t.Errorf("%q LIKE %q = %v, want %v", tc.s, tc.pattern, got, tc.like)
		}
		if got := search.Like(tc.s, tc.pattern, true); got != tc.ilike {
			t.Errorf("%q ILIKE %q = %v, want %v", tc.s, tc.pattern, got, tc.ilike)
		}
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	run := fakeRun{
		attrs: map[string]any{"run_id": "r1", "run_name": "My Run", "status": "FINISHED", "start_time": int64(1700000000000),
			"end_time": nil, "user_id": "ann", "lifecycle_stage": "active", "artifact_uri": "s3://b/r1"},
		metrics: map[string]float64{"acc": 0.9, "nan": math.NaN(), "neg": -2},
		params:  map[string]string{"model": "tree"},
		tags:    map[string]string{"mlflow.runName": "My Run", "team": "Blue"},
	}
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{"", true},
		{"metrics.acc > 0.5", true},
		{"metrics.acc > 0.9", false},
		{"metrics.acc >= 0.9 and metrics.acc <= 0.9 and metrics.acc = 0.9", true},
		{"metrics.acc != 1", true},
		{"metrics.missing != 1", false}, // a key the run lacks never matches, as in MLflow
		{"metrics.nan != 1", true},
		{"metrics.nan = 1", false},
		{"metrics.nan < 1", false},
		{"metrics.nan >= 1", false},
		{"metrics.neg < -1.5", true},
		{`params.model = "tree"`, true},
		{`params.model != "tree"`, false},
		{`params.missing != "tree"`, false},
		{`params.model LIKE 'tr%'`, true},
		{`params.model LIKE 'TR%'`, false},
		{`params.model ILIKE 'TR%'`, true},
		{`tags.team = 'Blue' and tags."mlflow.runName" ILIKE '%my run%'`, true},
		{`tags.team = 'blue'`, false},
		{`attributes.status = 'FINISHED'`, true},
		{`status IN ('RUNNING', 'FINISHED')`, true},
		{`status NOT IN ('RUNNING', 'FINISHED')`, false},
		{`run_id IN ('r2')`, false},
		{`attributes.run_name ILIKE '%my run%'`, true},
		{`"run name" = 'My Run'`, true}, // alias of run_name
		{`attributes.start_time > 1700000000000`, false},
		{`attributes.start_time >= 1700000000000`, true},
		{`created = 1700000000000`, true}, // alias of start_time
		{`start_time = 1.7e12`, true},
		{`start_time < 1700000000000.5`, true},
		{`start_time > 1699999999999.5`, true},
		{`end_time > 0`, false}, // no end time: no match
		{`end_time != 0`, false},
		{`user_id = 'ann' and lifecycle_stage = 'active' and artifact_uri LIKE 's3://%'`, true},
	} {
		if got := mustFilter(t, tc.filter).Match(run); got != tc.want {
			t.Errorf("%q matched %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestIntegerAttributesCompareExactly(t *testing.T) {
	t.Parallel()
	big := fakeRun{attrs: map[string]any{"start_time": int64(1<<53 + 1)}}
	for filter, want := range map[string]bool{
		"start_time > 9007199254740992":   true, // 2^53: as float64 both sides would be equal
		"start_time = 9007199254740993":   true,
		"start_time > 9007199254740992.0": true,
		"start_time < 9.3e18":             true,
		"start_time > -9.3e18":            true,
	} {
		if got := mustFilter(t, filter).Match(big); got != want {
			t.Errorf("%q: got %v", filter, got)
		}
	}
}

func TestSchemas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		schema *search.Schema
		filter string
		want   string // "" for valid
	}{
		{search.Runs, `created > 1 and "Run Name" = 'x'`, ""},
		{search.Runs, `attributes.foo = 'x'`, `invalid filter "attributes.foo = 'x'": unknown attribute "foo", valid attributes are artifact_uri, end_time, lifecycle_stage, run_id, run_name, start_time, status, user_id`},
		{search.Runs, `start_time = 'x'`, `invalid filter "attributes.start_time = 'x'": start_time compares with numbers, got 'x'`},
		{search.Runs, `created LIKE 'x'`, `invalid filter "attributes.created LIKE 'x'": created compares with =, !=, <, <=, > or >=, got LIKE`},
		{search.Runs, `end_time IN ('1')`, `invalid filter "attributes.end_time IN ('1')": end_time compares with =, !=, <, <=, > or >=, got IN`},
		{search.Runs, `status > 'a'`, `invalid filter "attributes.status > 'a'": status compares with =, !=, LIKE, ILIKE, IN or NOT IN, got >`},
		{search.Runs, `status = 1`, `invalid filter "attributes.status = 1": status compares with quoted strings, got 1`},
		{search.Runs, `datasets.name = 'd'`, `invalid filter "datasets.name = 'd'": runs cannot be filtered by datasets; use attributes, metrics, params, tags`},
		{search.Experiments, `name LIKE 'exp%' and tags.team = 'a' and creation_time > 5 and last_update_time < 6`, ""},
		{search.Experiments, `metrics.acc > 1`, `invalid filter "metrics.acc > 1": experiments cannot be filtered by metrics; use attributes, tags`},
		{search.Experiments, `created > 1`, `invalid filter "attributes.created > 1": unknown attribute "created", valid attributes are creation_time, last_update_time, name`},
		{search.RegisteredModels, `name ILIKE '%m%' and tags.t = 'x'`, ""},
		{search.RegisteredModels, `params.p = 'x'`, `invalid filter "params.p = 'x'": registered models cannot be filtered by params; use attributes, tags`},
		{search.ModelVersions, `name = 'm' and version_number >= 2 and run_id IN ('a', 'b') and source_path LIKE 's3://%'`, ""},
		{search.ModelVersions, `version_number = '2'`, `invalid filter "attributes.version_number = '2'": version_number compares with numbers, got '2'`},
	} {
		f, err := search.ParseFilter(tc.filter)
		if err != nil {
			t.Fatalf("%q: %v", tc.filter, err)
		}
		_, err = tc.schema.Filter(f)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %q: %v", tc.schema.Name, tc.filter, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want || !errors.Is(err, search.ErrInvalid)):
			t.Errorf("%s %q\n got %v\nwant %s", tc.schema.Name, tc.filter, err, tc.want)
		}
	}
	f := mustFilter(t, `created > 1 and "Run Name" = 'x' and tags.created = 'y'`)
	if f[0].Key != "start_time" || f[1].Key != "run_name" || f[2].Key != "created" {
		t.Fatalf("aliases not resolved (only for attributes): %+v", f)
	}
}

func TestOrderBy(t *testing.T) {
	t.Parallel()
	parse := func(clauses ...string) []search.Order {
		o, err := search.ParseOrderBy(clauses)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	got, err := search.Runs.OrderBy(nil)
	want := []search.Order{{Entity: A, Key: "start_time", Desc: true}, {Entity: A, Key: "run_id"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("default run order: %v %v", got, err)
	}
	got, _ = search.Runs.OrderBy(parse("metrics.acc DESC", "created"))
	want = []search.Order{{Entity: M, Key: "acc", Desc: true}, {Entity: A, Key: "start_time"}, {Entity: A, Key: "run_id"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	got, _ = search.Runs.OrderBy(parse("run_id DESC"))
	if len(got) != 1 {
		t.Fatalf("run_id is ordered by already, no tie-break needed: %v", got)
	}
	got, _ = search.ModelVersions.OrderBy(parse("creation_timestamp DESC"))
	want = []search.Order{{Entity: A, Key: "creation_timestamp", Desc: true}, {Entity: A, Key: "name"}, {Entity: A, Key: "version_number", Desc: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	for _, tc := range []struct {
		schema *search.Schema
		clause string
		want   string
	}{
		{search.Runs, "attributes.foo", `invalid order_by "attributes.foo ASC": unknown attribute "foo" to order by, valid attributes are artifact_uri, end_time, lifecycle_stage, run_id, run_name, start_time, status, user_id`},
		{search.Runs, "datasets.name", `invalid order_by "datasets.name ASC": runs cannot be ordered by datasets; use attributes, metrics, params, tags`},
		{search.Experiments, "tags.t", `invalid order_by "tags.t ASC": experiments cannot be ordered by tags; use attributes`},
	} {
		_, err := tc.schema.OrderBy(parse(tc.clause))
		if err == nil || err.Error() != tc.want || !errors.Is(err, search.ErrInvalid) {
			t.Errorf("%q\n got %v\nwant %s", tc.clause, err, tc.want)
		}
	}
}

func TestLessPutsMissingLast(t *testing.T) {
	t.Parallel()
	mk := func(id string, acc float64, hasAcc bool, end any) fakeRun {
		r := fakeRun{attrs: map[string]any{"run_id": id, "start_time": int64(1), "end_time": end}, metrics: map[string]float64{}}
		if hasAcc {
			r.metrics["acc"] = acc
		}
		return r
	}
	runs := []fakeRun{
		mk("a", 0, false, nil), mk("b", math.NaN(), true, int64(3)), mk("c", 0.5, true, int64(1)),
		mk("d", 0.9, true, nil), mk("e", 0.5, true, int64(2)), mk("f", math.Inf(-1), true, int64(1)),
	}
	order := func(clauses ...string) string {
		o, err := search.ParseOrderBy(clauses)
		if err == nil {
			o, err = search.Runs.OrderBy(o)
		}
		if err != nil {
			t.Fatal(err)
		}
		sorted := slices.Clone(runs)
		slices.SortStableFunc(sorted, func(x, y fakeRun) int {
			switch {
			case search.Less(o, x, y):
				return -1
			case search.Less(o, y, x):
				return 1
			}
			return 0
		})
		ids := ""
		for _, r := range sorted {
			ids += r.String()
		}
		return ids
	}
	for clauses, want := range map[string]string{
		"metrics.acc":         "fcedba", // numbers, NaN, then missing
		"metrics.acc DESC":    "dcefba",
		"attributes.end_time": "cfebad",
		"end_time DESC":       "becfad",
		"attributes.run_id":   "abcdef",
	} {
		if got := order(clauses); got != want {
			t.Errorf("order by %s: got %s, want %s", clauses, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	attrs := map[string]bool{"name": false, "creation_time": true}
	for filter, want := range map[string]string{
		`name LIKE 'a%' and creation_time > 5 and tags.t = 'x' and metrics.m > 1`: "",
		`foo = 'x'`:              `invalid filter "attributes.foo = 'x'": unknown attribute "foo", valid attributes are creation_time, name`,
		`creation_time = 'x'`:    `invalid filter "attributes.creation_time = 'x'": creation_time compares with numbers, got 'x'`,
		`name < 'x'`:             `invalid filter "attributes.name < 'x'": name compares with =, !=, LIKE, ILIKE, IN or NOT IN, got <`,
		`datasets.name = 'd'`:    `invalid filter "datasets.name = 'd'": these objects cannot be filtered by datasets; use attributes, metrics, params, tags`,
		`name NOT IN ('a', 'b')`: "",
	} {
		err := mustParse(t, filter).Check(attrs)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", filter, err)
		case want != "" && (err == nil || err.Error() != want || !errors.Is(err, search.ErrInvalid)):
			t.Errorf("%q\n got %v\nwant %s", filter, err, want)
		}
	}
}
