package xgboost_test

import (
	"bufio"
	"compress/gzip"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/forest"
	"github.com/flywheel-ml/flywheel/ml/forest/xgboost"
)

// The fixtures in testdata were written by testdata/gen.py with XGBoost 1.7.4: each model
// as XGBoost saved it (gzipped), its input rows, and XGBoost's own outputs.

// modelJSON is testdata/<name>.json.gz, unzipped.
func modelJSON(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open("testdata/" + name + ".json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func load(t testing.TB, name string, o xgboost.Options) (*forest.Model, []string) {
	t.Helper()
	m, names, err := xgboost.ParseWith(modelJSON(t, name), o)
	if err != nil {
		t.Fatal(err)
	}
	return m, names
}

func table(t testing.TB, name string) [][]float64 {
	t.Helper()
	f, err := os.Open("testdata/" + name)
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
				t.Fatalf("%s: %v", name, err)
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	return rows
}

// ulps is the distance between two float32 values in units in the last place.
func ulps(a, b float64) int64 {
	ia, ib := int64(math.Float32bits(float32(a))), int64(math.Float32bits(float32(b)))
	if ia>>31 != ib>>31 { // different signs: distance through zero
		return (ia & 0x7fffffff) + (ib & 0x7fffffff)
	}
	if ia > ib {
		return ia - ib
	}
	return ib - ia
}

type agreement struct {
	rows, same        int
	maxULP            int64
	maxAbs, maxRel    float64
	firstRow, firstOu int
}

// compare scores every input row and compares the outputs with want.
func compare(t *testing.T, m *forest.Model, in, want [][]float64, raw bool) agreement {
	t.Helper()
	if len(in) != len(want) || len(in) == 0 {
		t.Fatalf("%d input rows, %d outputs", len(in), len(want))
	}
	var a agreement
	a.firstRow = -1
	out := make([]float64, m.NumClasses())
	for i, row := range in {
		if raw {
			m.PredictRaw(row, out)
		} else {
			m.PredictInto(row, out)
		}
		if len(want[i]) != len(out) {
			t.Fatalf("row %d: %d outputs, want %d", i, len(out), len(want[i]))
		}
		for k, w := range want[i] {
			a.rows++
			if out[k] != float64(float32(out[k])) {
				t.Fatalf("row %d output %d: %v is not a float32", i, k, out[k])
			}
			if out[k] == w {
				a.same++
			} else if a.firstRow < 0 {
				a.firstRow, a.firstOu = i, k
			}
			d := math.Abs(out[k] - w)
			a.maxULP = max(a.maxULP, ulps(out[k], w))
			a.maxAbs = max(a.maxAbs, d)
			if w != 0 {
				a.maxRel = max(a.maxRel, d/math.Abs(w))
			}
		}
	}
	return a
}

// Tolerance. XGBoost computes in float32: it starts each margin at the base score, adds
// the float32 leaves tree by tree, then applies a float32 sigmoid, expf or softmax. The
// forest does the same arithmetic in the same order (Model.Float32), so margins must be
// bit-identical. The transforms call exp: Go's math.Exp rounded to float32 against glibc's
// expf (within 0.502 ulp, not always correctly rounded), so a transformed output may be
// off by one float32 ulp (about 6e-8 relative) — in practice none is.
func TestFixtures(t *testing.T) {
	for _, c := range []struct {
		name           string
		classes, trees int
		features       int
	}{
		{"binary", 1, 22, 8}, // best_iteration 21: 22 of the 27 trees trained
		{"regression", 1, 60, 8},
		{"poisson", 1, 60, 8},
		{"multiclass", 3, 90, 8},
		{"categorical", 1, 40, 4},
		{"bench200", 1, 200, 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, names := load(t, c.name, xgboost.Options{})
			if m.NumClasses() != c.classes || len(m.Roots) != c.trees || len(names) != c.features {
				t.Fatalf("%d classes, %d trees, %d names; want %d, %d, %d", m.NumClasses(), len(m.Roots), len(names), c.classes, c.trees, c.features)
			}
			in := table(t, c.name+"_input.tsv")
			margin := compare(t, m, in, table(t, c.name+"_margin.tsv"), true)
			if margin.same != margin.rows {
				t.Errorf("%d of %d margins differ from XGBoost's (first: row %d output %d)", margin.rows-margin.same, margin.rows, margin.firstRow, margin.firstOu)
			}
			pred := compare(t, m, in, table(t, c.name+"_pred.tsv"), false)
			if pred.maxULP > 1 {
				t.Errorf("outputs up to %d float32 ulps from XGBoost's (row %d output %d)", pred.maxULP, pred.firstRow, pred.firstOu)
			}
			t.Logf("%d rows × %d outputs: margins %d/%d identical; outputs %d/%d identical, max %d ulp, %.3g absolute, %.3g relative",
				len(in), c.classes, margin.same, margin.rows, pred.same, pred.rows, pred.maxULP, pred.maxAbs, pred.maxRel)
		})
	}
}

// Booster.predict ignores best_iteration; Options.AllTrees does too.
func TestAllTrees(t *testing.T) {
	m, _ := load(t, "binary", xgboost.Options{AllTrees: true})
	if len(m.Roots) != 27 {
		t.Fatalf("%d trees, want all 27", len(m.Roots))
	}
	a := compare(t, m, table(t, "binary_input.tsv"), table(t, "binary_pred_all.tsv"), false)
	if a.maxULP > 1 {
		t.Errorf("outputs up to %d float32 ulps from Booster.predict's", a.maxULP)
	}
	s := strings.Replace(string(modelJSON(t, "binary")), `"best_iteration"`, `"best_iteration_removed"`, 1)
	m, _, err := xgboost.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Roots) != 27 {
		t.Fatalf("without best_iteration: %d trees, want all 27", len(m.Roots))
	}
}

// Dart: the DMatrix path (Booster.predict) adds leaf·weight to the margin, which the
// parser reproduces by scaling the leaves; scikit-learn's predict goes through
// inplace_predict, which adds ((base + leaf) − base)·weight, a float32 rounding apart.
func TestDart(t *testing.T) {
	m, _ := load(t, "dart", xgboost.Options{})
	in := table(t, "dart_input.tsv")
	a := compare(t, m, in, table(t, "dart_pred_dmatrix.tsv"), false)
	if a.maxULP > 1 {
		t.Errorf("outputs up to %d float32 ulps from Booster.predict's", a.maxULP)
	}
	b := compare(t, m, in, table(t, "dart_pred.tsv"), false)
	if b.maxAbs > 1e-6 {
		t.Errorf("outputs up to %.3g from scikit-learn's predict_proba", b.maxAbs)
	}
	if c := compare(t, m, in, table(t, "dart_margin.tsv"), true); c.maxAbs > 1e-5 {
		t.Errorf("margins up to %.3g from scikit-learn's", c.maxAbs)
	}
	t.Logf("Booster.predict: %d/%d identical, max %d ulp; scikit-learn (inplace): %d/%d identical, max %d ulp, %.3g absolute",
		a.same, a.rows, a.maxULP, b.same, b.rows, b.maxULP, b.maxAbs)
}

func TestCategorical(t *testing.T) {
	m, _ := load(t, "categorical", xgboost.Options{})
	if got := m.CategoricalFeatures(); got[0] || !got[1] || !got[2] || got[3] {
		t.Fatalf("categorical features %v, want [false true true false]", got)
	}
}

func TestRefused(t *testing.T) {
	b := string(modelJSON(t, "regression"))
	for _, c := range []struct{ from, to, msg string }{
		{`"name":"gbtree"`, `"name":"gblinear"`, "gblinear"},
		{`"name":"gbtree"`, `"name":"dart"`, "no trees"}, // a dart booster keeps its trees in gbtree.model
		{`"name":"reg:squarederror"`, `"name":"binary:hinge"`, "not supported"},
		{`"split_indices":[`, `"split_indices":[99,`, "different lengths"},
		{`"num_class":"0","num_feature":"8"`, `"num_class":"0","num_feature":"99999999"`, "num_feature"},
		{`"num_class":"0"`, `"num_class":"3"`, "num_class 3"},
		{`"size_leaf_vector":"0"`, `"size_leaf_vector":"2"`, "vector leaves"},
		{`"num_target":"1"`, `"num_target":"2"`, "multi-target"},
		{`"base_score":"5E-1"`, `"base_score":"x"`, "base_score"},
		{`"left_children":[1,`, `"left_children":[0,`, "reached twice"},
		{`"split_conditions":[`, `"split_conditions":[NaN,`, "different lengths"},
		{`"split_conditions":[`, `"split_conditions":[-Infinity,`, "different lengths"},
		{`"split_conditions":[`, `"split_conditions":[1e39,`, "not a float32"},
	} {
		s := strings.Replace(b, c.from, c.to, 1)
		if s == b {
			t.Fatalf("fixture has no %s", c.from)
		}
		_, _, err := xgboost.Parse([]byte(s))
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s → %s: error %v, want one saying %q", c.from, c.to, err, c.msg)
		}
	}
	for _, s := range []string{"binf\x00", "", "{}", `{"learner":{"gradient_booster":{"name":"gbtree"}}}`} {
		if _, _, err := xgboost.Parse([]byte(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// BenchmarkPredict: the 200-round depth-6 binary model (XGBoost 1.7.4, 30 features); ns/op
// is the time to score one row.
func BenchmarkPredict(b *testing.B) {
	for _, name := range []string{"bench200", "regression"} {
		b.Run(name, func(b *testing.B) {
			m, _ := load(b, name, xgboost.Options{})
			rows := table(b, name+"_input.tsv")
			b.ReportAllocs()
			b.ResetTimer()
			s := 0.0
			for i := 0; i < b.N; i++ {
				s += m.Predict(rows[i%len(rows)])
			}
			_ = s
		})
	}
}

func BenchmarkMulticlass(b *testing.B) {
	m, _ := load(b, "multiclass", xgboost.Options{})
	rows := table(b, "multiclass_input.tsv")
	out := make([]float64, m.NumClasses())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.PredictInto(rows[i%len(rows)], out)
	}
}
