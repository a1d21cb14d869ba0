package artifact_test

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/ml/forest"
)

// testdata/{gbdt,logistic,ridge}.flywheel were encoded before imported forests existed
// (the sample and linear artifacts of these tests at commit 543bbd2): decoding and
// re-encoding them must give the same bytes, so their content hashes still name them.
func TestExistingEncodingsUnchanged(t *testing.T) {
	for _, name := range []string{"gbdt", "logistic", "ridge"} {
		old, err := os.ReadFile("testdata/" + name + ".flywheel")
		if err != nil {
			t.Fatal(err)
		}
		a, err := artifact.Decode(old)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := artifact.Encode(a)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, old) {
			t.Errorf("%s: re-encoded to different bytes (hash %s, was %s)", name, artifact.ContentHash(b), artifact.ContentHash(old))
		}
	}
}

// smallForest: features x (numeric) and c (categorical codes); trees per output k of the
// trainer's own split kinds.
func smallForest(t testing.TB, trainer string, outputs int, transform string) *forest.Model {
	t.Helper()
	m := forest.New(2, outputs, transform)
	m.Trainer = trainer
	num, cat := forest.NumLE, forest.CatLeft
	if trainer == forest.XGBoost {
		num, cat, m.Float32 = forest.NumLT32, forest.CatRight, true
	}
	leaf := func(v float64) forest.TreeNode { return forest.TreeNode{Node: forest.Node{Feature: -1, Value: v}} }
	for k := range outputs {
		for j := range 2 {
			v := float64(k+1) * 0.25 * float64(1+j)
			tree := []forest.TreeNode{
				{Node: forest.Node{Feature: 0, Kind: num, Threshold: 1.5, Missing: forest.MissingNaN, DefaultLeft: true, Left: 1, Right: 2}},
				{Node: forest.Node{Feature: 1, Kind: cat, Left: 3, Right: 4}, CatBits: []uint32{0b1010}},
				leaf(v), leaf(-v), leaf(2 * v),
			}
			if err := m.AppendTree(tree, k); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m
}

func forestArtifact(t testing.TB, trainer, task string) *artifact.Artifact {
	t.Helper()
	var m *forest.Model
	threshold := 0.0
	switch task {
	case "binary":
		m, threshold = smallForest(t, trainer, 1, forest.Sigmoid), 0.5
	case "regression":
		m = smallForest(t, trainer, 1, forest.Exp)
	default:
		m = smallForest(t, trainer, 3, forest.Softmax)
	}
	a, err := artifact.FromForest("imported", m, []string{"x", "c"}, threshold)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestForestArtifacts(t *testing.T) {
	rows := [][]float64{{0, 1}, {2, 3}, {math.NaN(), math.NaN()}, {1.5, -1}, {7, 40}}
	for _, trainer := range []string{artifact.LightGBM, artifact.XGBoost} {
		for _, task := range []string{"binary", "regression", artifact.Multiclass} {
			a := forestArtifact(t, trainer, task)
			if a.Algorithm != trainer || a.Task != task || a.Signature[0].Kind != "numeric" || a.Signature[1].Kind != "categorical" ||
				a.Signature[1].Source != "request:c" || (task == artifact.Multiclass) != (a.Classes == 3) {
				t.Fatalf("%s %s: %+v", trainer, task, a)
			}
			b1, err := artifact.Encode(a)
			if err != nil {
				t.Fatal(err)
			}
			b2, _ := artifact.Encode(a)
			back, err := artifact.Decode(b1)
			if err != nil {
				t.Fatalf("%s %s: %v", trainer, task, err)
			}
			b3, _ := artifact.Encode(back)
			if !bytes.Equal(b1, b2) || !bytes.Equal(b1, b3) {
				t.Fatalf("%s %s: encoding is not deterministic", trainer, task)
			}
			k := a.Forest.NumClasses()
			want, got := make([]float64, k), make([]float64, k)
			for _, row := range rows {
				a.Forest.PredictInto(row, want)
				back.Predictor().(*forest.Model).PredictInto(row, got)
				for i := range want {
					if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
						t.Fatalf("%s %s row %v: %v after the round trip, %v before", trainer, task, row, got, want)
					}
				}
				if p := back.Predictor().Predict(row); p != want[0] {
					t.Fatalf("%s %s: Predict %v, PredictInto %v", trainer, task, p, want[0])
				}
			}
		}
	}
}

func TestFromForestRefuses(t *testing.T) {
	m := smallForest(t, artifact.LightGBM, 1, forest.Identity)
	for _, c := range []struct {
		names     []string
		threshold float64
		want      string
	}{
		{[]string{"x"}, 0, "1 feature names for a forest of 2"},
		{[]string{"x", "x"}, 0, `names "x" twice`},
	} {
		if _, err := artifact.FromForest("m", m, c.names, c.threshold); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: %v, want an error saying %q", c.names, c.threshold, err, c.want)
		}
	}
	b := smallForest(t, artifact.LightGBM, 1, forest.Sigmoid)
	if _, err := artifact.FromForest("m", b, []string{"x", "c"}, 0); err == nil || !strings.Contains(err.Error(), "binary threshold 0") {
		t.Errorf("binary without a threshold: %v", err)
	}
	if a, err := artifact.FromForest("m", m, []string{"x", "c"}, 0.5); err != nil || a.Threshold != 0 {
		t.Errorf("a regression model with a threshold: %v, threshold %v", err, a.Threshold)
	}
	raw := smallForest(t, artifact.LightGBM, 2, forest.Identity)
	if _, err := artifact.FromForest("m", raw, []string{"x", "c"}, 0); err == nil || !strings.Contains(err.Error(), "transform identity") {
		t.Errorf("raw multi-output scores: %v", err)
	}
	b.Trainer = ""
	if _, err := artifact.FromForest("m", b, []string{"x", "c"}, 0.5); err == nil || !strings.Contains(err.Error(), "no trainer") {
		t.Errorf("a forest without a trainer: %v", err)
	}
}

// Decode refuses a damaged forest with an error naming the problem, and never hands out a
// forest unsafe to score.
func TestDecodeRefusesABadForest(t *testing.T) {
	good, err := artifact.Encode(forestArtifact(t, artifact.LightGBM, artifact.Multiclass))
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	for name, c := range map[string]struct{ from, to, want string }{
		"child out of range":   {`"left":1,"right":4`, `"left":1,"right":99`, "children 1 and 99"},
		"child backwards":      {`"left":1`, `"left":0`, "want the left child next (1)"},
		"right before left":    {`"left":2,"right":3`, `"left":2,"right":2`, "children 2 and 2"},
		"feature out of range": {`"feature":1`, `"feature":2`, "splits on feature 2 of 2"},
		"tree outside nodes":   {`"roots":[0,5,`, `"roots":[0,99,`, "tree 1 starts at node 99"},
		"output out of range":  {`"tree_output":[0`, `"tree_output":[5`, "adds to output 5"},
		"bitset out of range":  {`"cat_len":1`, `"cat_len":9`, "bitset"},
		"classes":              {`"classes":3`, `"classes":4`, "multiclass task of 4 classes"},
		"no classes":           {`"classes":3,`, ``, "0 classes for a multiclass task"},
		"trainer":              {`"algorithm":"lightgbm"`, `"algorithm":"xgboost"`, `trained by "lightgbm"`},
		"multiclass gbdt":      {`"algorithm":"lightgbm"`, `"algorithm":"gbdt"`, "imported forests only"},
		"categorical numeric":  {`"kind":"categorical"`, `"kind":"numeric"`, "reads feature c as categorical"},
		"unknown field":        {`"transform":`, `"leaves":1,"transform":`, "unknown field"},
		"transform":            {`"transform":"softmax"`, `"transform":"tanh"`, "unknown transform"},
		"base score":           {`"base_score":[0,0,0]`, `"base_score":[0,0]`, "2 base scores for 3 outputs"},
		"features":             {`"num_features":2`, `"num_features":3`, "reads 3 features, signature has 2"},
		"split kind":           {`"kind":2`, `"kind":9`, "split kind 9"},
	} {
		bad := strings.Replace(s, c.from, c.to, 1)
		if bad == s {
			t.Fatalf("%s: the encoded artifact has no %s", name, c.from)
		}
		if _, err := artifact.Decode([]byte(bad)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
	gb, _ := artifact.Encode(forestArtifact(t, artifact.XGBoost, "binary"))
	withGBDT := strings.Replace(string(gb), `"forest":`, `"gbdt":{"objective":"binary","num_features":2,"features":[{},{}],"trees":[]},"forest":`, 1)
	if _, err := artifact.Decode([]byte(withGBDT)); err == nil || !strings.Contains(err.Error(), "with a gbdt or linear model") {
		t.Errorf("a forest artifact with a gbdt payload: %v", err)
	}
}
