package xgboost_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/forest/xgboost"
)

// FuzzParse: any input gives a model that scores without panicking, or an error.
func FuzzParse(f *testing.F) {
	// Real models cut to their first two trees: whole ones (10–100 kB) slow mutation to a
	// crawl.
	for _, name := range []string{"binary", "categorical", "dart", "multiclass"} {
		f.Add(firstTrees(f, name, 2))
	}
	f.Add([]byte(`{"learner":{"learner_model_param":{"base_score":"5E-1","num_class":"0","num_feature":"1"},"objective":{"name":"reg:squarederror"},` +
		`"gradient_booster":{"name":"dart","weight_drop":[0.5],"gbtree":{"model":{"tree_info":[0],"trees":[{"left_children":[1,-1,-1],` +
		`"right_children":[2,-1,-1],"split_indices":[0,0,0],"split_conditions":[-Infinity,NaN,2],"default_left":[1,0,0]}]}}}}}`))
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

// firstTrees is the fixture name with only its first n trees, XGBoost's bare NaN and
// Infinity kept.
func firstTrees(t testing.TB, name string, n int) []byte {
	t.Helper()
	b := modelJSON(t, name)
	bare := regexp.MustCompile(`([\[,])(NaN|-?Infinity)([,\]])`) // in arrays; twice for neighbours
	b = bare.ReplaceAll(bare.ReplaceAll(b, []byte(`$1"$2"$3`)), []byte(`$1"$2"$3`))
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	l := doc["learner"].(map[string]any)
	delete(l["attributes"].(map[string]any), "scikit_learn")
	gb := l["gradient_booster"].(map[string]any)
	if w, ok := gb["weight_drop"].([]any); ok {
		gb["weight_drop"] = w[:n]
		gb = gb["gbtree"].(map[string]any)
	}
	m := gb["model"].(map[string]any)
	m["trees"] = m["trees"].([]any)[:n]
	m["tree_info"] = m["tree_info"].([]any)[:n]
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"NaN", "Infinity", "-Infinity"} {
		out = bytes.ReplaceAll(out, []byte(`"`+tok+`"`), []byte(tok))
	}
	return out
}
