package dataset_test

import (
	"math"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/dataset"
)

func TestReadCSV(t *testing.T) {
	in := "a,cat,label,b\n1.5,3,1,\n-2,,0,4e-3\n"
	f, err := dataset.ReadCSV(strings.NewReader(in), dataset.CSVOptions{Label: "label", Categorical: func(n string) bool { return n == "cat" }})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Names, ","); got != "a,cat,b" || f.Kinds[1] != dataset.Categorical || f.Kinds[0] != dataset.Numeric {
		t.Fatalf("names %s kinds %v", got, f.Kinds)
	}
	if f.Rows() != 2 || f.Cols[0][1] != -2 || f.Cols[1][0] != 3 || !math.IsNaN(f.Cols[1][1]) || !math.IsNaN(f.Cols[2][0]) || f.Cols[2][1] != 4e-3 {
		t.Fatalf("cols %v", f.Cols)
	}
	if f.Label[0] != 1 || f.Label[1] != 0 {
		t.Fatalf("label %v", f.Label)
	}
}

func TestReadCSVErrorsNameTheProblem(t *testing.T) {
	for in, want := range map[string]string{
		"a,label\n1\n":           "line 2: 1 fields, want 2",
		"a,label\n1,0,3\n":       "more than 2 fields",
		"a,label\nx,1\n":         `line 2 column a: "x" is not a number`,
		"a,label\n1,\n":          "the label is missing",
		"a,b\n1,2\n":             `label column "label" is not in the header`,
		"a,cat,label\n1,1.5,0\n": "not an integer code",
		"":                       "read header",
	} {
		_, err := dataset.ReadCSV(strings.NewReader(in), dataset.CSVOptions{Label: "label", Categorical: func(n string) bool { return n == "cat" }})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %q", in, err, want)
		}
	}
}
