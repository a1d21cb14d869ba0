package views_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

func TestShippedAndBenchViewsLoad(t *testing.T) {
	c, err := views.Load(schemas.FeatureViews())
	if err != nil {
		t.Fatal(err)
	}
	v, ok := c.Get("card_activity")
	if !ok || v.Version == "" || len(v.Features) < 13 {
		t.Fatalf("card_activity: %+v", v)
	}
	for _, name := range []string{"txn_count_10m", "txn_count_1h", "txn_count_24h", "txn_count_7d", "amount_sum_1h", "amount_sum_24h",
		"amount_avg_24h", "amount_avg_7d", "amount_max_24h", "distinct_merchants_24h", "distinct_countries_24h", "last_country", "last_txn_time"} {
		if _, ok := v.Feature(name); !ok {
			t.Errorf("card_activity lacks the contract feature %s", name)
		}
	}
	wide, err := views.Load(os.DirFS("../testdata/bench"))
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := wide.Get("card_wide"); len(w.Features) != 50 {
		t.Fatalf("the benchmark view must have 50 features")
	}
}

func TestVersionFollowsTheDefinition(t *testing.T) {
	def := "name: v\nentities: [k]\nsource: s\nttl: 1d\nfeatures:\n  - {name: c, agg: count, window: 1h, default: 0}\n"
	a, err := views.Parse([]byte(def))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := views.Parse([]byte("# a comment\n" + def))
	c, _ := views.Parse([]byte(strings.Replace(def, "window: 1h", "window: 2h", 1)))
	if a.Version != b.Version || a.Version == c.Version {
		t.Fatalf("versions: %s %s %s", a.Version, b.Version, c.Version)
	}
}

func TestRejectsBadDefinitions(t *testing.T) {
	for name, def := range map[string]string{
		"unknown agg":     "name: v\nentities: [k]\nsource: s\nttl: 1d\nfeatures:\n  - {name: c, agg: median, field: x, window: 1h}\n",
		"no window":       "name: v\nentities: [k]\nsource: s\nttl: 1d\nfeatures:\n  - {name: c, agg: sum, field: x}\n",
		"no field":        "name: v\nentities: [k]\nsource: s\nttl: 1d\nfeatures:\n  - {name: c, agg: sum, window: 1h}\n",
		"window > ttl":    "name: v\nentities: [k]\nsource: s\nttl: 1h\nfeatures:\n  - {name: c, agg: count, window: 2h}\n",
		"off-grid window": "name: v\nentities: [k]\nsource: s\nttl: 1d\nfeatures:\n  - {name: c, agg: count, window: 90s}\n",
		"unknown key":     "name: v\nentities: [k]\nsource: s\nttl: 1d\nwindowz: 3\nfeatures:\n  - {name: c, agg: count, window: 1h}\n",
		"duplicate name":  "name: v\nentities: [k]\nsource: s\nttl: 1d\nfeatures:\n  - {name: c, agg: count, window: 1h}\n  - {name: c, agg: count, window: 2h}\n",
		"bad filter op":   "name: v\nentities: [k]\nsource: s\nttl: 1d\nfeatures:\n  - {name: c, agg: count, window: 1h, filter: {field: a, op: like, value: x}}\n",
	} {
		if _, err := views.Parse([]byte(def)); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

// FuzzParse: definitions either parse into a usable view or fail with an error, never panic.
func FuzzParse(f *testing.F) {
	raw, _ := os.ReadFile("../testdata/bench/card_wide.yaml")
	f.Add(raw)
	f.Add([]byte("name: v\nentities: [k]\nsource: s\nttl: 1d\nfeatures:\n  - {name: c, agg: count, window: 1h, default: 0}\n"))
	f.Add([]byte("name: [\n"))
	f.Fuzz(func(t *testing.T, def []byte) {
		v, err := views.Parse(def)
		if err != nil {
			return
		}
		if v.Version == "" || len(v.Features) == 0 || len(v.Entities) == 0 {
			t.Fatalf("a parsed view lacks its version, features or entities: %+v", v)
		}
		for _, f := range v.Features {
			if views.Windowed(f.Agg) && (f.Tile <= 0 || time.Duration(f.Window)%f.Tile != 0) {
				t.Fatalf("windowed feature %s without a dividing tile", f.Name)
			}
		}
	})
}
