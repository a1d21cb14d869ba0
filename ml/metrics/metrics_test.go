package metrics_test

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/metrics"
)

// The reference values come from scikit-learn 1.2 on the same inputs (testdata/).
func TestMatchesScikitLearn(t *testing.T) {
	raw, err := os.ReadFile("testdata/sklearn_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Y, P, Yr, Pr                                           []float64
		AUC, AP, Logloss, Brier, Acc, Prec, Rec, F1, RMSE, MAE float64
		R2                                                     float64 `json:"r2"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	b := metrics.EvaluateBinary(ref.Y, ref.P, 0.5)
	r := metrics.EvaluateRegression(ref.Yr, ref.Pr)
	for name, c := range map[string][2]float64{
		"auc": {b.AUC, ref.AUC}, "pr_auc": {b.PRAUC, ref.AP}, "log_loss": {b.LogLoss, ref.Logloss}, "brier": {b.Brier, ref.Brier},
		"accuracy": {b.Accuracy, ref.Acc}, "precision": {b.Precision, ref.Prec}, "recall": {b.Recall, ref.Rec}, "f1": {b.F1, ref.F1},
		"rmse": {r.RMSE, ref.RMSE}, "mae": {r.MAE, ref.MAE}, "r2": {r.R2, ref.R2},
	} {
		if math.Abs(c[0]-c[1]) > 1e-12 {
			t.Errorf("%s = %.15g, scikit-learn %.15g", name, c[0], c[1])
		}
	}
}

func TestOneClassHasNoAUC(t *testing.T) {
	b := metrics.EvaluateBinary([]float64{1, 1}, []float64{0.2, 0.9}, 0.5)
	if !math.IsNaN(b.AUC) || !math.IsNaN(b.PRAUC) || b.Recall != 0.5 {
		t.Fatalf("%+v", b)
	}
}
