package concept

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/metrics"
)

// A model whose scores separate the classes as on its holdout stays above the floor in about
// 99 % of windows; one whose pattern changed (a segment's labels flipped) falls below it.
func TestAUCFloorAlarmsOnAboutOnePercentOfUnchangedWindows(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	window := func(n int, flip float64) (y, s []float64) {
		for range n {
			label := 0.0
			if rng.Float64() < 0.1 {
				label = 1
			}
			score := rng.NormFloat64() + 1.5*label // AUC ≈ Φ(1.5/√2) ≈ 0.856
			if rng.Float64() < flip {
				label = 1 - label
			}
			y, s = append(y, label), append(s, score)
		}
		return
	}
	holdY, holdS := window(200_000, 0)
	holdout := metrics.EvaluateBinary(holdY, holdS, 0.5).AUC
	alarms := 0
	const windows = 2000
	for range windows {
		y, s := window(1000, 0)
		pos, neg := Counts(y)
		if metrics.EvaluateBinary(y, s, 0.5).AUC < AUCFloor(holdout, pos, neg) {
			alarms++
		}
	}
	if rate := float64(alarms) / windows; rate > 0.02 {
		t.Errorf("unchanged model: %.2f %% of windows below the floor, want about 1 %%", 100*rate)
	}
	detected := 0
	for range 200 {
		y, s := window(1000, 0.08)
		pos, neg := Counts(y)
		if metrics.EvaluateBinary(y, s, 0.5).AUC < AUCFloor(holdout, pos, neg) {
			detected++
		}
	}
	if detected < 190 {
		t.Errorf("8 %% of labels flipped: %d of 200 windows below the floor", detected)
	}
	if !math.IsNaN(AUCFloor(0.9, 0, 100)) {
		t.Error("a window without positives has a floor")
	}
}
