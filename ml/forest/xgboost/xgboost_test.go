package xgboost_test

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/forest"
	"github.com/flywheel-ml/flywheel/ml/forest/xgboost"
)

// Fixtures written by testdata/gen.py with XGBoost 1.7.4.

func load(t testing.TB, name string) (*forest.Model, []string) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	m, names, err := xgboost.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return m, names
}

func table(t testing.TB, path string) [][]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var row []float64
		for _, s := range strings.Split(sc.Text(), "\t") {
			v, err := strconv.ParseFloat(s, 64) // "nan" parses to NaN
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	return rows
}

// Tolerance: XGBoost adds float32 leaves into a float32 margin and applies the link in
// float32; we add the same float32 leaves in float64. A float32 sum of ~100 terms is off by a
// few float32 ulps (6e-8 each) of the running margin, so we hold 2e-6 relative to
// max(|prediction|, 1) for values (the regression sums 120 trees) and 1e-6 absolute for
// probabilities.
func TestFixtures(t *testing.T) {
	for _, c := range []struct {
		name    string
		classes int
		tol     float64
		trees   int
	}{
		{"binary", 1, 1e-6, 22}, // best_iteration 21: 22 of the 27 trees trained
		{"regression", 1, 2e-6, 120},
		{"poisson", 1, 2e-6, 60},
		{"multiclass", 3, 1e-6, 120},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, names := load(t, c.name)
			if m.NumClasses() != c.classes || len(m.Roots) != c.trees || len(names) != 8 {
				t.Fatalf("%d classes, %d trees, %d names; want %d, %d, 8", m.NumClasses(), len(m.Roots), len(names), c.classes, c.trees)
			}
			in, want := table(t, "testdata/"+c.name+"_input.tsv"), table(t, "testdata/"+c.name+"_pred.tsv")
			if len(in) != len(want) || len(in) == 0 {
				t.Fatalf("%d rows, %d predictions", len(in), len(want))
			}
			out := make([]float64, m.NumClasses())
			worst := 0.0
			for i, row := range in {
				m.PredictInto(row, out)
				for k, w := range want[i] {
					d := math.Abs(out[k]-w) / max(math.Abs(w), 1)
					worst = max(worst, d)
					if d > c.tol {
						t.Errorf("row %d output %d: %.9g, XGBoost %.9g", i, k, out[k], w)
					}
				}
			}
			t.Logf("%d rows, worst error %.3g (relative to max(|y|, 1))", len(in), worst)
		})
	}
}

func TestAllTreesWithoutBestIteration(t *testing.T) {
	b, err := os.ReadFile("testdata/binary.json")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `"best_iteration"`, `"best_iteration_removed"`, 1)
	m, _, err := xgboost.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Roots) != 27 {
		t.Fatalf("%d trees, want all 27", len(m.Roots))
	}
}

func TestRefused(t *testing.T) {
	b, err := os.ReadFile("testdata/regression.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to, msg string }{
		{`"name":"gbtree"`, `"name":"dart"`, "dart"},
		{`"name":"gbtree"`, `"name":"gblinear"`, "gblinear"},
		{`"name":"reg:squarederror"`, `"name":"binary:hinge"`, "not supported"},
		{`"split_indices":[`, `"split_indices":[99,`, "different lengths"},
	} {
		s := strings.Replace(string(b), c.from, c.to, 1)
		if s == string(b) {
			t.Fatalf("fixture has no %s", c.from)
		}
		_, _, err := xgboost.Parse([]byte(s))
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s → %s: error %v, want one saying %q", c.from, c.to, err, c.msg)
		}
	}
	if _, _, err := xgboost.Parse([]byte("binf\x00")); err == nil {
		t.Error("binary input accepted")
	}
}

func BenchmarkRegression120Trees(b *testing.B) {
	m, _ := load(b, "regression")
	rows := table(b, "testdata/regression_input.tsv")
	b.ReportAllocs()
	b.ResetTimer()
	s := 0.0
	for i := 0; i < b.N; i++ {
		s += m.Predict(rows[i%len(rows)])
	}
	_ = s
}

func BenchmarkMulticlass(b *testing.B) {
	m, _ := load(b, "multiclass")
	rows := table(b, "testdata/multiclass_input.tsv")
	out := make([]float64, m.NumClasses())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.PredictInto(rows[i%len(rows)], out)
	}
}
