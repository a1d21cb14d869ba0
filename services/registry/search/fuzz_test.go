package search_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/services/registry/search"
)

// FuzzParseFilter: parsing never panics, and an accepted filter formats to text that parses
// back to the same comparisons. Whatever passes the runs schema also compiles to SQL.
func FuzzParseFilter(f *testing.F) {
	for _, seed := range []string{
		"", `metrics.rmse < 1 and params.model = "tree"`, `attributes.status = 'FINISHED'`,
		`tags."mlflow.source.type" = 'LOCAL'`, `attributes.run_id IN ('a','b')`,
		`attributes.run_name ILIKE '%My Run%'`, `attributes.start_time > 1700000000000`,
		"tags.`a``b` != 'it''s' AND status NOT IN (\"x\", 'y')", `metrics.a>-1.5e-3 and created<=.5`,
		`datasets.context = 'train'`, `"run name" like '\%_\\'`, `metrics.acc >> 1`, `tags.x = 'ü' OR`,
		`metrics.a > 1e-400`, `status IN ()`, `(metrics.a > 1)`, `metrics.`,
	} {
		f.Add(seed)
	}
	rec := fakeRun{attrs: map[string]any{"status": "FINISHED", "start_time": int64(5), "run_name": "x"},
		metrics: map[string]float64{"a": 1}, params: map[string]string{"model": "tree"}, tags: map[string]string{"t": "v"}}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := search.ParseFilter(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid filter ") {
				t.Fatalf("error %q", err)
			}
			return
		}
		text := flt.String()
		again, err := search.ParseFilter(text)
		if err != nil {
			t.Fatalf("%q formats to %q, which does not parse: %v", s, text, err)
		}
		if !reflect.DeepEqual(flt, again) {
			t.Fatalf("%q formats to %q, which parses differently:\n%#v\n%#v", s, text, flt, again)
		}
		flt.Match(rec)
		if checked, err := search.Runs.Filter(flt); err == nil {
			checked.Match(rec)
			if _, _, err := (search.RunsQuery{ExperimentIDs: []string{"1"}, Filter: checked, Limit: 10}).SQL(); err != nil {
				t.Fatalf("%q passed the runs schema but gives no SQL: %v", s, err)
			}
		}
	})
}

// FuzzParseOrderBy: never panics; an accepted clause formats to one that parses the same.
func FuzzParseOrderBy(f *testing.F) {
	for _, seed := range []string{"metrics.acc DESC", "attributes.start_time", "params.lr ASC", "tags.`a b` desc", "x y", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		orders, err := search.ParseOrderBy([]string{s})
		if err != nil {
			return
		}
		again, err := search.ParseOrderBy([]string{orders[0].String()})
		if err != nil || !reflect.DeepEqual(orders, again) {
			t.Fatalf("%q formats to %q: %v %+v", s, orders[0].String(), err, again)
		}
	})
}
