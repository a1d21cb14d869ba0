package search_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/flywheel-ml/flywheel/services/registry/search"
)

func num(e search.Entity, key, op, lit string, v float64) search.Comparison {
	return search.Comparison{Entity: e, Key: key, Op: op, Str: lit, Num: v, IsNum: true}
}

func str(e search.Entity, key, op, v string) search.Comparison {
	return search.Comparison{Entity: e, Key: key, Op: op, Str: v}
}

func list(e search.Entity, key, op string, vs ...string) search.Comparison {
	return search.Comparison{Entity: e, Key: key, Op: op, List: vs}
}

const (
	M = search.Metric
	P = search.Param
	T = search.Tag
	A = search.Attribute
	D = search.Dataset
)

func TestParseFilterValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want search.Filter
	}{
		{"", nil},
		{"   \n\t ", nil},
		// Examples of MLflow's search-runs documentation.
		{`metrics.rmse < 1 and params.model = "tree"`, search.Filter{num(M, "rmse", "<", "1", 1), str(P, "model", "=", "tree")}},
		{`attributes.status = 'FINISHED'`, search.Filter{str(A, "status", "=", "FINISHED")}},
		{`tags."mlflow.source.type" = 'LOCAL'`, search.Filter{str(T, "mlflow.source.type", "=", "LOCAL")}},
		{`attributes.run_id IN ('a','b')`, search.Filter{list(A, "run_id", "IN", "a", "b")}},
		{`attributes.run_name ILIKE '%My Run%'`, search.Filter{str(A, "run_name", "ILIKE", "%My Run%")}},
		{`attributes.start_time > 1700000000000`, search.Filter{num(A, "start_time", ">", "1700000000000", 1.7e12)}},
		{`metrics.accuracy > 0.72`, search.Filter{num(M, "accuracy", ">", "0.72", 0.72)}},
		{`metrics.accuracy > 0.72 AND metrics.loss <= 0.2`, search.Filter{num(M, "accuracy", ">", "0.72", 0.72), num(M, "loss", "<=", "0.2", 0.2)}},
		{`params.batch_size = "2"`, search.Filter{str(P, "batch_size", "=", "2")}},
		{`tags.mlflow.source.type = "LOCAL"`, search.Filter{str(T, "mlflow.source.type", "=", "LOCAL")}},
		{"tags.`mlflow.runName` = 'r1'", search.Filter{str(T, "mlflow.runName", "=", "r1")}},
		{`tags.mlflow.runName LIKE 'nice%'`, search.Filter{str(T, "mlflow.runName", "LIKE", "nice%")}},
		{`metrics."my metric" >= -1.5e-3`, search.Filter{num(M, "my metric", ">=", "-1.5e-3", -1.5e-3)}},
		{`params.model LIKE 'ran%'`, search.Filter{str(P, "model", "LIKE", "ran%")}},
		{`attributes.run_name = 'my-run'`, search.Filter{str(A, "run_name", "=", "my-run")}},
		{`run_name = 'my-run'`, search.Filter{str(A, "run_name", "=", "my-run")}},
		{`status != 'FAILED'`, search.Filter{str(A, "status", "!=", "FAILED")}},
		{`attributes.status NOT IN ('FAILED', "KILLED")`, search.Filter{list(A, "status", "NOT IN", "FAILED", "KILLED")}},
		{`attribute.run_id in ('x')`, search.Filter{list(A, "run_id", "IN", "x")}},
		{`run.status = 'RUNNING'`, search.Filter{str(A, "status", "=", "RUNNING")}},
		{`attr.user_id = 'ann'`, search.Filter{str(A, "user_id", "=", "ann")}},
		{`created > 5`, search.Filter{num(A, "created", ">", "5", 5)}},
		{`"run name" = 'x'`, search.Filter{str(A, "run name", "=", "x")}},
		{"`Run Name` = 'x'", search.Filter{str(A, "Run Name", "=", "x")}},
		{`datasets.digest IN ('s8ds293b', 'jks834s2')`, search.Filter{list(D, "digest", "IN", "s8ds293b", "jks834s2")}},
		{`dataset.name = 'ds'`, search.Filter{str(D, "name", "=", "ds")}},
		{`metric.a=1 AnD param.b!='x' and parameter.c ilike 'Y' and parameters.d like '%' and tag.e = ''`, search.Filter{
			num(M, "a", "=", "1", 1), str(P, "b", "!=", "x"), str(P, "c", "ILIKE", "Y"), str(P, "d", "LIKE", "%"), str(T, "e", "=", ""),
		}},
		{`metrics.a>-1 and metrics.b<.5 and metrics.c>=1. and metrics.d<=2E+3 and metrics.e!=-.25`, search.Filter{
			num(M, "a", ">", "-1", -1), num(M, "b", "<", ".5", .5), num(M, "c", ">=", "1.", 1), num(M, "d", "<=", "2E+3", 2000), num(M, "e", "!=", "-.25", -.25),
		}},
		{`params.q = 'it''s' AND params.r = "say ""hi"""`, search.Filter{str(P, "q", "=", "it's"), str(P, "r", "=", `say "hi"`)}},
		{`tags."a ""b""" = 'x' and tags.` + "`c``d`" + ` = 'y'`, search.Filter{str(T, `a "b"`, "=", "x"), str(T, "c`d", "=", "y")}},
		{`METRICS.val-loss < 2 AND tags.path/to = 'ü'`, search.Filter{num(M, "val-loss", "<", "2", 2), str(T, "path/to", "=", "ü")}},
		{`metrics.x > 1e-400`, search.Filter{num(M, "x", ">", "1e-400", 0)}},
		{`params.p = '(a, b) AND c'`, search.Filter{str(P, "p", "=", "(a, b) AND c")}},
	} {
		got, err := search.ParseFilter(tc.in)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseFilter(%q)\n got %#v\nwant %#v", tc.in, got, tc.want)
		}
	}
}

func TestParseFilterInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`metrics.acc >> 1`, `invalid filter "metrics.acc >> 1": unknown operator ">>" at position 12`},
		{`metrics.acc == 1`, `invalid filter "metrics.acc == 1": unknown operator "==" at position 12`},
		{`metrics.acc <> 1`, `invalid filter "metrics.acc <> 1": unknown operator "<>" at position 12`},
		{`metrics.acc = 'abc'`, `invalid filter "metrics.acc = 'abc'": metrics compare with numbers, got 'abc'`},
		{`metrics.acc LIKE '1'`, `invalid filter "metrics.acc LIKE '1'": metrics compare with =, !=, <, <=, > or >=, got LIKE`},
		{`metrics.acc > 1 OR metrics.acc < 0`, `invalid filter "metrics.acc > 1 OR metrics.acc < 0": OR is not supported, join comparisons with AND`},
		{`params.lr > '1'`, `invalid filter "params.lr > '1'": params compare with =, !=, LIKE or ILIKE, got >`},
		{`params.lr = 0.1`, `invalid filter "params.lr = 0.1": params compare with quoted strings, got 0.1`},
		{`tags.t IN ('a')`, `invalid filter "tags.t IN ('a')": tags compare with =, !=, LIKE or ILIKE, got IN`},
		{`tags.t = ('a')`, `invalid filter "tags.t = ('a')": tags compare with quoted strings, got ('a')`},
		{`status IN 'a'`, `invalid filter "status IN 'a'": IN needs a list of quoted strings such as ('a', 'b'), got 'a'`},
		{`status = ('a', 'b')`, `invalid filter "status = ('a', 'b')": a list needs IN or NOT IN, got =`},
		{`run_name LIKE 5`, `invalid filter "run_name LIKE 5": LIKE needs a quoted pattern, got 5`},
		{`datasets.name > 'a'`, `invalid filter "datasets.name > 'a'": datasets compare with =, !=, LIKE, ILIKE, IN or NOT IN, got >`},
		{`datasets.size = 'a'`, `invalid filter "datasets.size = 'a'": unknown dataset key "size", expected name, digest or context`},
		{`foo.bar = 'a'`, `invalid filter "foo.bar = 'a'": unknown entity "foo" at position 0, expected metrics, params, tags, attributes or datasets`},
		{`metrics. > 1`, `invalid filter "metrics. > 1": missing key after "metrics." at position 0`},
		{`metrics."" > 1`, `invalid filter "metrics.\"\" > 1": empty key at position 8`},
		{`tags.a"b" = 'x'`, `invalid filter "tags.a\"b\" = 'x'": unexpected "\"b\"" at position 6, a key is either quoted or not`},
		{`(metrics.a > 1)`, `invalid filter "(metrics.a > 1)": unexpected "(" at position 0, expected an identifier (parentheses only enclose IN lists)`},
		{`metrics.a > 1 AND`, `invalid filter "metrics.a > 1 AND": unexpected end of filter, expected an identifier such as metrics.acc, params.lr, tags.team or status`},
		{`AND metrics.a > 1`, `invalid filter "AND metrics.a > 1": unexpected "AND" at position 0, expected an identifier such as metrics.acc, params.lr, tags.team or status`},
		{`metrics.a > 1 metrics.b > 2`, `invalid filter "metrics.a > 1 metrics.b > 2": unexpected "metrics.b" at position 14, expected AND`},
		{`metrics.a > 1; metrics.b > 2`, `invalid filter "metrics.a > 1; metrics.b > 2": unexpected ";" at position 13`},
		{`metrics.a`, `invalid filter "metrics.a": unexpected end of filter, expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN or NOT IN)`},
		{`metrics.a >`, `invalid filter "metrics.a >": unexpected end of filter, expected a value: a number, a quoted string or a list of quoted strings`},
		{`metrics.a 1`, `invalid filter "metrics.a 1": unexpected "1" at position 10, expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN or NOT IN)`},
		{`metrics.a > abc`, `invalid filter "metrics.a > abc": unexpected "abc" at position 12, expected a value: a number, a quoted string or a list of quoted strings`},
		{`metrics.a > 1e`, `invalid filter "metrics.a > 1e": invalid number "1e" at position 12`},
		{`metrics.a > 1.2.3`, `invalid filter "metrics.a > 1.2.3": invalid number "1.2.3" at position 12`},
		{`metrics.a > 1e999`, `invalid filter "metrics.a > 1e999": number 1e999 at position 12 is out of range`},
		{`metrics.a > 5e-324`, `invalid filter "metrics.a > 5e-324": number 5e-324 at position 12 is out of range`},
		{`params.a = 'x`, `invalid filter "params.a = 'x": unterminated string starting at position 11`},
		{`params.a = ` + "`x`", `invalid filter "params.a = ` + "`x`" + `": unexpected "` + "`x`" + `" at position 11, expected a value: a number, a quoted string or a list of quoted strings`},
		{`status NOT LIKE 'x'`, `invalid filter "status NOT LIKE 'x'": unexpected "LIKE" at position 11, expected IN (NOT only forms NOT IN)`},
		{`status IN ()`, `invalid filter "status IN ()": empty list at position 10, expected at least one quoted string`},
		{`status IN ('a',)`, `invalid filter "status IN ('a',)": unexpected ")" at position 15, expected a quoted string`},
		{`status IN ('a' 'b')`, `invalid filter "status IN ('a' 'b')": unexpected "'b'" at position 15, expected "," or ")"`},
		{`status IN ('a', 1)`, `invalid filter "status IN ('a', 1)": unexpected "1" at position 16, expected a quoted string`},
		{`status IN ('a'`, `invalid filter "status IN ('a'": unexpected end of filter, expected "," or ")"`},
		{`'status' = 'a'`, `invalid filter "'status' = 'a'": unexpected "'status'" at position 0, expected an identifier such as metrics.acc, params.lr, tags.team or status`},
		{`"" = 'a'`, `invalid filter "\"\" = 'a'": empty attribute name at position 0`},
		{`status = 'a' # comment`, `invalid filter "status = 'a' # comment": unexpected "#" at position 13`},
	} {
		_, err := search.ParseFilter(tc.in)
		if err == nil {
			t.Errorf("ParseFilter(%q): want an error", tc.in)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("ParseFilter(%q)\n got %s\nwant %s", tc.in, err, tc.want)
		}
		var se *search.Error
		if !errors.Is(err, search.ErrInvalid) || !errors.As(err, &se) || se.What != "filter" || se.Input != tc.in {
			t.Errorf("ParseFilter(%q): error %#v must be a *search.Error wrapping ErrInvalid", tc.in, err)
		}
	}
}

func TestParseOrderBy(t *testing.T) {
	t.Parallel()
	got, err := search.ParseOrderBy([]string{
		"metrics.acc DESC", "attributes.start_time", "params.lr ASC", "tags.`mlflow.runName` desc",
		`metrics."val loss"`, "run_name", "created DESC",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []search.Order{
		{Entity: M, Key: "acc", Desc: true}, {Entity: A, Key: "start_time"}, {Entity: P, Key: "lr"},
		{Entity: T, Key: "mlflow.runName", Desc: true}, {Entity: M, Key: "val loss"}, {Entity: A, Key: "run_name"},
		{Entity: A, Key: "created", Desc: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if got, err := search.ParseOrderBy(nil); err != nil || got != nil {
		t.Fatalf("no clauses: got %v, %v", got, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"metrics.acc DESCENDING", `invalid order_by "metrics.acc DESCENDING": unexpected "DESCENDING" at position 12, expected ASC or DESC`},
		{"metrics.acc DESC ASC", `invalid order_by "metrics.acc DESC ASC": unexpected "ASC" at position 17, expected the end of the clause`},
		{"", `invalid order_by "": empty clause, expected an identifier and an optional ASC or DESC`},
		{"foo.bar", `invalid order_by "foo.bar": unknown entity "foo" at position 0, expected metrics, params, tags, attributes or datasets`},
		{"metrics.acc, params.lr", `invalid order_by "metrics.acc, params.lr": unexpected "," at position 11, expected ASC or DESC`},
	} {
		_, err := search.ParseOrderBy([]string{"status", tc.in})
		if err == nil || err.Error() != tc.want || !errors.Is(err, search.ErrInvalid) {
			t.Errorf("ParseOrderBy(%q)\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

func TestStringRoundTrips(t *testing.T) {
	t.Parallel()
	f, err := search.ParseFilter(`run_name = 'it''s' and tags."a b" != "x" and metrics.m >= -1.50 and status in ('a', "b")`)
	if err != nil {
		t.Fatal(err)
	}
	const want = `attributes.run_name = 'it''s' AND tags."a b" != 'x' AND metrics.m >= -1.50 AND attributes.status IN ('a', 'b')`
	if f.String() != want {
		t.Fatalf("got  %s\nwant %s", f, want)
	}
	o := search.Order{Entity: T, Key: "mlflow.runName", Desc: true}
	if o.String() != "tags.mlflow.runName DESC" {
		t.Fatalf("order: %s", o)
	}
}
