package drift

import (
	"math"
	"slices"
)

// BenjaminiHochberg returns which of the hypotheses with p-values p are rejected at false
// discovery rate q by the Benjamini–Hochberg step-up procedure: with p₍₁₎ ≤ … ≤ p₍ₘ₎, reject
// the k smallest for the largest k with p₍ₖ₎ ≤ k·q/m. Under no drift at all it rejects
// anything with probability at most q (for independent or positively dependent p-values),
// which makes it the model-level rule: "drift" when any feature is rejected. A NaN p-value
// counts in m and is never rejected.
func BenjaminiHochberg(p []float64, q float64) []bool {
	adj := AdjustBH(p)
	out := make([]bool, len(p))
	for i, a := range adj {
		out[i] = a <= q
	}
	return out
}

// AdjustBH returns Benjamini–Hochberg adjusted p-values (q-values):
// min over j ≥ rank(i) of m·p₍ⱼ₎/j, capped at 1, so that feature i is rejected at FDR q
// exactly when its adjusted value is ≤ q. NaN stays NaN (and counts as 1 for the others).
func AdjustBH(p []float64) []float64 {
	m := len(p)
	order := make([]int, m)
	for i := range order {
		order[i] = i
	}
	key := func(i int) float64 {
		if math.IsNaN(p[i]) {
			return math.Inf(1)
		}
		return p[i]
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ka, kb := key(a), key(b)
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	out := make([]float64, m)
	run := 1.0
	for r := m - 1; r >= 0; r-- {
		i := order[r]
		if math.IsNaN(p[i]) {
			out[i] = math.NaN()
			continue
		}
		run = math.Min(run, p[i]*float64(m)/float64(r+1))
		out[i] = run
	}
	return out
}
