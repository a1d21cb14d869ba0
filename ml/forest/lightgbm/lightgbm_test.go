package lightgbm_test

import (
	"bufio"
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

// Tolerance: the fixtures print 17–19 significant digits, so they carry LightGBM's doubles
// exactly; we sum the same leaves in the same order in float64, so the only differences are
// libm's exp and the softmax normalisation: the worst seen is 4.7e-16 relative (raw scores
// are bit-identical). We hold 1e-14 relative (plus 1e-300 absolute for exact zeros).
const relTol, absTol = 1e-14, 1e-300

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
			worst := 0.0
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
					worst = max(worst, d/max(math.Abs(w), 1e-300))
					if d > absTol+relTol*math.Abs(w) {
						t.Errorf("row %d output %d: %.17g, LightGBM %.17g", i, k, out[k], w)
					}
				}
				if !c.raw && math.Abs(m.Predict(row)-out[0]) != 0 {
					t.Errorf("row %d: Predict %v, PredictInto %v", i, m.Predict(row), out[0])
				}
			}
			t.Logf("%d rows, worst relative error %.3g", len(in), worst)
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
