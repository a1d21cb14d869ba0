package lightgbm_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/forest/lightgbm"
)

// FuzzParse: any input gives a model that scores without panicking, or an error.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"lg_dart_breast_cancer.model", "genlin_fmtp_poisson_Frequency.model"} {
		b, err := os.ReadFile(fixture(f, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 8000)]) // the header and first trees: keeps mutation fast
	}
	f.Add([]byte("tree\nversion=v3\nnum_class=1\nmax_feature_idx=0\nobjective=regression\nfeature_names=a\nTree=0\nnum_leaves=1\nleaf_value=1\n"))
	f.Add([]byte("tree\nversion=v3\nnum_class=1\nmax_feature_idx=1\nobjective=binary sigmoid:2\nfeature_names=a b\nTree=0\nnum_leaves=2\nnum_cat=1\n" +
		"split_feature=1\nthreshold=0\ndecision_type=1\nleft_child=-1\nright_child=-2\nleaf_value=1 2\ncat_boundaries=0 1\ncat_threshold=5\n"))
	f.Add([]byte("tree\nversion=v4\nnum_class=2\nnum_tree_per_iteration=2\nmax_feature_idx=0\nobjective=multiclassova num_class:2 sigmoid:1.5\n" +
		"average_output\nfeature_names=a\nfeature_infos=1:2\n\nTree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=1e-36\ndecision_type=4\n" +
		"left_child=-1\nright_child=-2\nleaf_value=1 2\n\nTree=1\nnum_leaves=1\nnum_cat=0\nleaf_value=3\n\nend of trees\n\nparameters:\n" +
		"[boosting: rf]\n[objective: multiclassova]\n[categorical_feature: 0]\nend of parameters\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, names, err := lightgbm.Parse(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(names) != m.NumFeatures {
			t.Fatalf("%d names for %d features", len(names), m.NumFeatures)
		}
		if m.NumFeatures > 1<<16 {
			return // valid, but too wide to score quickly here
		}
		out := make([]float64, m.NumClasses())
		for _, v := range []float64{0, -1, 1e300, -0.5, 3} {
			row := make([]float64, m.NumFeatures)
			for i := range row {
				row[i] = v
			}
			m.PredictInto(row, out)
		}
	})
}

func TestRefuses(t *testing.T) {
	const head = "tree\nversion=v3\nnum_class=1\nmax_feature_idx=1\nobjective=regression\nfeature_names=a b\n"
	for _, c := range []struct{ name, model, want string }{
		{"no trees", head, "no trees"},
		{"cycle", head + "Tree=0\nnum_leaves=3\nnum_cat=0\nsplit_feature=0 0\nthreshold=1 2\ndecision_type=2 2\nleft_child=1 0\nright_child=-1 -2\nleaf_value=1 2 3\n", "reached twice"},
		{"feature out of range", head + "Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=7\nthreshold=1\ndecision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=1 2\n", "splits on feature 7 of 2"},
		{"short arrays", head + "Tree=0\nnum_leaves=3\nnum_cat=0\nsplit_feature=0\nthreshold=1\ndecision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=1 2 3\n", "split_feature has 1 values, want 2"},
		{"absurd leaves", head + "Tree=0\nnum_leaves=99999999999\nleaf_value=1\n", "num_leaves"},
		{"sqrt", "tree\nversion=v3\nnum_class=1\nmax_feature_idx=1\nobjective=regression sqrt\nfeature_names=a b\nTree=0\nnum_leaves=1\nleaf_value=1\n", "reg_sqrt"},
		{"linear", head + "Tree=0\nnum_leaves=1\nleaf_value=1\nis_linear=1\n", "linear trees"},
		{"not lightgbm", "hello", "no \"tree\" first line"},
		{"objectives disagree", head + "Tree=0\nnum_leaves=1\nnum_cat=0\nleaf_value=1\nend of trees\nparameters:\n[objective: binary]\nend of parameters\n", "parameters objective \"binary\""},
		{"unknown boosting", head + "Tree=0\nnum_leaves=1\nnum_cat=0\nleaf_value=1\nend of trees\nparameters:\n[boosting: magic]\nend of parameters\n", "boosting \"magic\""},
		{"linear_tree", head + "Tree=0\nnum_leaves=1\nnum_cat=0\nleaf_value=1\nend of trees\nparameters:\n[linear_tree: 1]\nend of parameters\n", "linear_tree"},
		{"rf without average_output", head + "Tree=0\nnum_leaves=1\nnum_cat=0\nleaf_value=1\nend of trees\nparameters:\n[boosting: rf]\nend of parameters\n", "average_output is false"},
		{"partial iteration", "tree\nversion=v3\nnum_class=2\nmax_feature_idx=1\nobjective=multiclass num_class:2\nfeature_names=a b\nTree=0\nnum_leaves=1\nnum_cat=0\nleaf_value=1\n", "not a multiple of num_tree_per_iteration=2"},
		{"num_class disagrees", "tree\nversion=v3\nnum_class=2\nmax_feature_idx=1\nobjective=multiclass num_class:3\nfeature_names=a b\nTree=0\nnum_leaves=1\nnum_cat=0\nleaf_value=1\nTree=1\nnum_leaves=1\nnum_cat=0\nleaf_value=1\n", "2 trees per iteration"},
		{"cross_entropy_lambda", "tree\nversion=v3\nnum_class=1\nmax_feature_idx=1\nobjective=cross_entropy_lambda\nfeature_names=a b\nTree=0\nnum_leaves=1\nnum_cat=0\nleaf_value=1\n", "cross_entropy_lambda"},
		{"infinite threshold", head + "Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=1e400\ndecision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=1 2\n", "threshold +Inf"},
	} {
		if _, _, err := lightgbm.Parse(bytes.NewReader([]byte(c.model))); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}
