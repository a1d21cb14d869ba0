// Package metrics evaluates predictions: AUC-ROC, PR-AUC (average precision), log loss,
// Brier score and threshold metrics for binary tasks; RMSE, MAE and R² for regression. The
// definitions follow scikit-learn's (roc_auc_score, average_precision_score, log_loss with
// probabilities clipped to [1e-15, 1 − 1e-15], brier_score_loss, r2_score), so figures compare
// one to one.
package metrics

import (
	"math"
	"sort"
)

// Binary is the evaluation of a binary classifier on labelled rows.
type Binary struct {
	Rows      int     `json:"rows"`
	Positives int     `json:"positives"`
	AUC       float64 `json:"auc"`
	PRAUC     float64 `json:"pr_auc"`
	LogLoss   float64 `json:"log_loss"`
	Brier     float64 `json:"brier"`
	Threshold float64 `json:"threshold"`
	Accuracy  float64 `json:"accuracy"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
}

// Map returns the metrics by the names gates use.
func (b Binary) Map() map[string]float64 {
	return map[string]float64{"auc": b.AUC, "pr_auc": b.PRAUC, "log_loss": b.LogLoss, "brier": b.Brier,
		"accuracy": b.Accuracy, "precision": b.Precision, "recall": b.Recall, "f1": b.F1}
}

// EvaluateBinary scores probabilities p against labels y (0 or 1); a score at or above
// threshold predicts 1. AUC and PR-AUC are NaN when only one class is present.
func EvaluateBinary(y, p []float64, threshold float64) Binary {
	n := len(y)
	out := Binary{Rows: n, Threshold: threshold}
	if n == 0 {
		return out
	}
	var tp, fp, fn, tn float64
	const eps = 1e-15
	for i, yi := range y {
		pi := min(max(p[i], eps), 1-eps)
		if yi == 1 {
			out.Positives++
			out.LogLoss -= math.Log(pi)
		} else {
			out.LogLoss -= math.Log(1 - pi)
		}
		out.Brier += (p[i] - yi) * (p[i] - yi)
		switch pred := p[i] >= threshold; {
		case pred && yi == 1:
			tp++
		case pred:
			fp++
		case yi == 1:
			fn++
		default:
			tn++
		}
	}
	out.LogLoss /= float64(n)
	out.Brier /= float64(n)
	out.Accuracy = (tp + tn) / float64(n)
	out.Precision = ratio(tp, tp+fp)
	out.Recall = ratio(tp, tp+fn)
	out.F1 = ratio(2*tp, 2*tp+fp+fn)
	out.AUC, out.PRAUC = curves(y, p)
	return out
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0 // scikit-learn's zero_division default warns and returns 0
	}
	return a / b
}

// curves computes the area under the ROC curve (trapezoids, ties as one threshold) and the
// average precision Σ (Rₙ − Rₙ₋₁)·Pₙ over thresholds in decreasing order.
func curves(y, p []float64) (auc, ap float64) {
	idx := make([]int, len(y))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return p[idx[a]] > p[idx[b]] })
	var pos, neg float64
	for _, v := range y {
		if v == 1 {
			pos++
		} else {
			neg++
		}
	}
	if pos == 0 || neg == 0 {
		return math.NaN(), math.NaN()
	}
	var tp, fp, prevTP, prevFP float64
	for k := 0; k < len(idx); {
		s := p[idx[k]]
		for ; k < len(idx) && p[idx[k]] == s; k++ {
			if y[idx[k]] == 1 {
				tp++
			} else {
				fp++
			}
		}
		auc += (fp - prevFP) * (tp + prevTP) / 2
		ap += (tp - prevTP) / pos * (tp / (tp + fp))
		prevTP, prevFP = tp, fp
	}
	return auc / (pos * neg), ap
}

// Regression is the evaluation of a regressor.
type Regression struct {
	Rows int     `json:"rows"`
	RMSE float64 `json:"rmse"`
	MAE  float64 `json:"mae"`
	R2   float64 `json:"r2"`
}

// Map returns the metrics by the names gates use.
func (r Regression) Map() map[string]float64 {
	return map[string]float64{"rmse": r.RMSE, "mae": r.MAE, "r2": r.R2}
}

// EvaluateRegression scores predictions p against targets y.
func EvaluateRegression(y, p []float64) Regression {
	n := float64(len(y))
	out := Regression{Rows: len(y)}
	if n == 0 {
		return out
	}
	var mean, se, ae float64
	for _, v := range y {
		mean += v
	}
	mean /= n
	var ss float64
	for i, v := range y {
		d := p[i] - v
		se += d * d
		ae += math.Abs(d)
		ss += (v - mean) * (v - mean)
	}
	out.RMSE, out.MAE = math.Sqrt(se/n), ae/n
	out.R2 = 1 - se/ss
	if ss == 0 {
		out.R2 = math.NaN()
	}
	return out
}
