package xgboost_test

import (
	"os"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/forest/xgboost"
)

// FuzzParse: any input gives a model that scores without panicking, or an error.
func FuzzParse(f *testing.F) {
	b, err := os.ReadFile("testdata/binary.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"learner":{"learner_model_param":{"base_score":"5E-1","num_class":"0","num_feature":"2"},"objective":{"name":"binary:logistic"},` +
		`"gradient_booster":{"name":"gbtree","model":{"tree_info":[0],"trees":[{"left_children":[1,-1,-1],"right_children":[2,-1,-1],` +
		`"split_indices":[1,0,0],"split_conditions":[0.5,1,-1],"default_left":[1,0,0],"split_type":[1,0,0],"categories":[3,40],` +
		`"categories_nodes":[0],"categories_segments":[0],"categories_sizes":[2]}]}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, names, err := xgboost.Parse(b)
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
		for _, v := range []float64{0, -1, 1e300, 3, 40} {
			row := make([]float64, m.NumFeatures)
			for i := range row {
				row[i] = v
			}
			m.PredictInto(row, out)
		}
	})
}
