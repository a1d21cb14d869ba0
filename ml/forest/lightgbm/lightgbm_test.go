package lightgbm_test

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/forest"
	"github.com/flywheel-ml/flywheel/ml/forest/lightgbm"
)

// fixtures are LightGBM's own models and predictions (see its README.md).
const fixtures = "../../../../shared/fixtures/lightgbm/"

func fixture(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(fixtures, name)
	if _, err := os.Stat(p); err != nil {
		abs, _ := filepath.Abs(fixtures)
		t.Fatalf("LightGBM fixture %s missing: expected the shared fixtures at %s (the shared/ checkout beside the repo, ../shared from its root): %v", name, abs, err)
	}
	return p
}

func load(t testing.TB, name string) (*forest.Model, []string) {
	t.Helper()
	f, err := os.Open(fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, names, err := lightgbm.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return m, names
}

// table reads whitespace-separated numbers, one row per line.
func table(t testing.TB, name string) [][]float64 {
	t.Helper()
	f, err := os.Open(fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]float64
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var row []float64
		for _, s := range strings.Fields(sc.Text()) {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			row = append(row, v)
		}
		if len(row) > 0 {
			rows = append(rows, row)
		}
	}
	return rows
}

// Tolerance. The fixtures print 17–19 significant digits, enough to carry LightGBM's
// doubles exactly, so the printing allows any tolerance down to none. We add the same
// leaves in the same order in float64, so raw scores must be bit-identical (tolerance 0).
// Transformed outputs go through exp — Go's math.Exp against glibc's, each within 1 ulp of
// the true value, so they may differ by one ulp — then sigmoid's division or softmax's sum
// and divisions, a few roundings more: we hold them to 1e-15 relative (about 4.5 ulp);
// the worst seen is 4.7e-16.
const transformedTol = 1e-15

func TestFixtures(t *testing.T) {
	cases := []struct {
		model, input, want string
		dropLabel, raw     bool
		classes            int
	}{
		{"lg_kddcup99.model", "kddcup99_test.tsv", "lg_kddcup99_true_predictions.txt", false, true, 13},
		{"lgmulticlass.model", "multiclass_test.tsv", "lgmulticlass_true_predictions.txt", true, false, 5},
		{"lgmulticlass.model", "multiclass_test.tsv", "lgmulticlass_true_raw_predictions.txt", true, true, 5},
		{"lg_dart_breast_cancer.model", "breast_cancer_test.tsv", "lg_dart_breast_cancer_true_predictions.txt", false, false, 1},
		{"genlin_fmtp_poisson_Frequency.model", "genlin_fmtp_poisson_Frequency_features.tsv", "genlin_fmtp_poisson_Frequency_true_predictions.txt", false, false, 1},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			m, names := load(t, c.model)
			if m.NumClasses() != c.classes {
				t.Fatalf("%d classes, want %d", m.NumClasses(), c.classes)
			}
			in, want := table(t, c.input), table(t, c.want)
			if len(in) != len(want) || len(in) == 0 {
				t.Fatalf("%d input rows, %d predictions", len(in), len(want))
			}
			out := make([]float64, m.NumClasses())
			worst, worstAbs := 0.0, 0.0
			for i, row := range in {
				if c.dropLabel {
					row = row[1:]
				}
				if len(row) != len(names) {
					t.Fatalf("row %d has %d values for %d features", i, len(row), len(names))
				}
				if c.raw {
					m.PredictRaw(row, out)
				} else {
					m.PredictInto(row, out)
				}
				if len(want[i]) != len(out) {
					t.Fatalf("row %d: %d predictions, want %d", i, len(want[i]), len(out))
				}
				for k, w := range want[i] {
					d := math.Abs(out[k] - w)
					worst, worstAbs = max(worst, d/math.Abs(w)), max(worstAbs, d)
					if (c.raw && d != 0) || d > transformedTol*math.Abs(w) {
						t.Errorf("row %d output %d: %.17g, LightGBM %.17g", i, k, out[k], w)
					}
				}
				if !c.raw && math.Abs(m.Predict(row)-out[0]) != 0 {
					t.Errorf("row %d: Predict %v, PredictInto %v", i, m.Predict(row), out[0])
				}
			}
			t.Logf("%d rows × %d outputs, worst error %.3g relative, %.3g absolute", len(in), m.NumClasses(), worst, worstAbs)
		})
	}
}

func TestPoissonNames(t *testing.T) {
	_, names := load(t, "genlin_fmtp_poisson_Frequency.model")
	if got := strings.Join(names, " "); got != "VehBrand VehPower VehGas Region Area VehAge DrivAge BonusMalus Density" {
		t.Fatalf("names %q", got)
	}
}

func BenchmarkPoisson(b *testing.B) {
	m, _ := load(b, "genlin_fmtp_poisson_Frequency.model")
	rows := table(b, "genlin_fmtp_poisson_Frequency_features.tsv")
	b.ReportAllocs()
	b.ResetTimer()
	s := 0.0
	for i := 0; i < b.N; i++ {
		s += m.Predict(rows[i%len(rows)])
	}
	_ = s
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parse(t *testing.T, s string) (*forest.Model, error) {
	t.Helper()
	m, _, err := lightgbm.Parse(strings.NewReader(s))
	return m, err
}

// replace replaces old by new once, failing when the fixture has no old.
func replace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("fixture has no %q", old)
	}
	return strings.Replace(s, old, new, 1)
}

// A random forest (boosting rf) says average_output in its header, a line without "=":
// LightGBM divides each output's tree sum by the number of iterations before the
// transform.
func TestAverageOutput(t *testing.T) {
	s := read(t, "lgmulticlass.model")
	gb, err := parse(t, s)
	if err != nil {
		t.Fatal(err)
	}
	rf := replace(t, replace(t, s, "feature_names=", "average_output\nfeature_names="), "[boosting: gbdt]", "[boosting: rf]")
	m, err := parse(t, rf)
	if err != nil {
		t.Fatal(err)
	}
	if !m.AverageOutput {
		t.Fatal("average_output not read")
	}
	iters := float64(len(m.Roots) / m.NumClasses())
	row := table(t, "multiclass_test.tsv")[0][1:]
	sum, avg := make([]float64, 5), make([]float64, 5)
	gb.PredictRaw(row, sum)
	m.PredictRaw(row, avg)
	for k := range sum {
		if avg[k] != sum[k]/iters {
			t.Fatalf("output %d: %v, want %v/%v", k, avg[k], sum[k], iters)
		}
	}
	if _, err := parse(t, replace(t, s, "feature_names=", "average_output\nfeature_names=")); err == nil ||
		!strings.Contains(err.Error(), "average_output") {
		t.Fatalf("average_output in a gbdt model: %v", err)
	}
}

// Without an objective line (a custom objective) LightGBM predicts raw scores.
func TestNoObjectiveLine(t *testing.T) {
	s := read(t, "lgmulticlass.model")
	gb, _ := parse(t, s)
	s = replace(t, s, "objective=multiclass num_class:5\n", "")
	if _, err := parse(t, s); err == nil || !strings.Contains(err.Error(), "parameters say objective multiclass") {
		t.Fatalf("no objective line, parameters say multiclass: %v", err)
	}
	m, err := parse(t, replace(t, s, "[objective: multiclass]", "[objective: custom]"))
	if err != nil {
		t.Fatal(err)
	}
	row := table(t, "multiclass_test.tsv")[0][1:]
	raw, out := make([]float64, 5), make([]float64, 5)
	gb.PredictRaw(row, raw)
	m.PredictInto(row, out)
	for k := range raw {
		if raw[k] != out[k] {
			t.Fatalf("output %d: %v, want the raw score %v", k, out[k], raw[k])
		}
	}
}

func TestCategoricalFeatures(t *testing.T) {
	for _, c := range []struct {
		model string
		want  []int
	}{
		// feature_infos lists categories for these (6, 7, 8 and 20 are categorical but unused: "none")
		{"lg_kddcup99.model", []int{1, 2, 3, 9, 10, 11, 13, 21, 22, 23}},
		{"genlin_fmtp_poisson_Frequency.model", []int{0, 1, 2, 3, 4}},
		{"lgmulticlass.model", nil},
	} {
		m, _ := load(t, c.model)
		var got []int
		for i, cat := range m.CategoricalFeatures() {
			if cat {
				got = append(got, i)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: categorical %v, want %v", c.model, got, c.want)
		}
	}
}
