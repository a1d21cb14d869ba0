// Package concept judges model quality from delayed labels: the window's metrics (the
// model_performance rows), and concept drift — a window whose AUC is below what the training
// holdout's AUC allows at that window's numbers of positives and negatives.
package concept

import (
	"math"

	"github.com/flywheel-ml/flywheel/ml/metrics"
)

// Metrics are the window's quality figures: binary ones with the model's threshold, or
// regression ones; plus n and, for binary, the label rate.
func Metrics(task string, labels, scores []float64, threshold float64) map[string]float64 {
	var out map[string]float64
	if task == "binary" {
		out = metrics.EvaluateBinary(labels, scores, threshold).Map()
		pos := 0.0
		for _, y := range labels {
			pos += y
		}
		out["label_rate"] = pos / float64(max(len(labels), 1))
	} else {
		out = metrics.EvaluateRegression(labels, scores).Map()
	}
	for k, v := range out {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(out, k)
		}
	}
	return out
}

// zOneSided99 is the standard normal's 99th percentile: a window of a model whose AUC did not
// change falls below the floor 1 % of the time.
const zOneSided99 = 2.3263478740408408

// AUCFloor is the lowest AUC a window with pos positives and neg negatives shows, at a 1 %
// false-alarm rate, when the model still ranks as well as on its holdout (AUC a): a − z·SE,
// with SE by Hanley & McNeil (1982). The floor widens for small or unbalanced windows, so a
// window of 3 frauds does not cry concept drift. NaN when a class is absent.
func AUCFloor(a float64, pos, neg int) float64 {
	if pos == 0 || neg == 0 || math.IsNaN(a) {
		return math.NaN()
	}
	q1, q2 := a/(2-a), 2*a*a/(1+a)
	p, n := float64(pos), float64(neg)
	se := math.Sqrt((a*(1-a) + (p-1)*(q1-a*a) + (n-1)*(q2-a*a)) / (p * n))
	return a - zOneSided99*se
}

// Counts returns the positives and negatives of binary labels.
func Counts(labels []float64) (pos, neg int) {
	for _, y := range labels {
		if y > 0.5 {
			pos++
		} else {
			neg++
		}
	}
	return pos, neg
}
