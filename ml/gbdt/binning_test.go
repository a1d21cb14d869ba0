package gbdt

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBinNumericMatchesBin(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	vals := make([]float64, 5000)
	for i := range vals {
		vals[i] = math.Round(rng.NormFloat64()*100) / 10
	}
	specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), math.MaxFloat64, -math.MaxFloat64, 1e-300}
	vals = append(vals, specials...)
	sorted := slices.DeleteFunc(slices.Clone(vals), isMissing)
	slices.Sort(sorted)
	for _, maxBins := range []int{2, 7, 255} {
		edges := numericEdges(sorted, maxBins)
		fb := featureBins{edges: edges, nbins: len(edges) + 1}
		for _, e := range edges {
			fb.keys = append(fb.keys, orderedKey(e))
		}
		if len(edges) > maxBins || edges[len(edges)-1] != math.MaxFloat64 || !slices.IsSorted(edges) {
			t.Fatalf("maxBins %d: %d edges, last %v", maxBins, len(edges), edges[len(edges)-1])
		}
		got := make([]uint8, len(vals))
		fb.binNumeric(vals, got)
		for i, v := range vals {
			want := fb.bin(v)
			if got[i] != want {
				t.Fatalf("maxBins %d: value %v: binNumeric %d, bin %d", maxBins, v, got[i], want)
			}
			if !isMissing(v) && (v > edges[want] || want > 0 && v <= edges[want-1]) {
				t.Fatalf("maxBins %d: value %v in bin %d with edges %v, %v", maxBins, v, want, edges[max(0, int(want)-1)], edges[want])
			}
		}
	}
}

func TestNumericEdgesFewDistinct(t *testing.T) {
	edges := numericEdges([]float64{1, 1, 1, 2, 2, 5}, 255)
	if want := []float64{1.5, 3.5, math.MaxFloat64}; !slices.Equal(edges, want) {
		t.Errorf("edges %v, want %v", edges, want)
	}
}

func TestFitCategorical(t *testing.T) {
	col := []float64{3, 3, 3, 0, 0, 7, math.NaN(), -1, 9, 1000}
	rows := make([]int32, len(col))
	for i := range rows {
		rows[i] = int32(i)
	}
	fb := fitCategorical(col, rows, 2)
	// 3 and 0 are the two most frequent; 7, 9 and 1000 share "other"; then missing. Codes up
	// to 1000 go through the dense table, larger ones through the map.
	if !slices.Equal(fb.codes, []int32{3, 0}) || !slices.Equal(fb.other, []int32{7, 9, 1000}) || fb.nbins != 4 {
		t.Fatalf("codes %v other %v nbins %d", fb.codes, fb.other, fb.nbins)
	}
	for _, c := range []struct {
		v    float64
		want uint8
	}{{3, 0}, {0, 1}, {7, 2}, {9, 2}, {1000, 2}, {math.NaN(), 3}, {-1, 3}, {5, 3}, {8, 3}, {2.5, 3}, {1e7, 3}} {
		if got := fb.bin(c.v); got != c.want {
			t.Errorf("bin(%v) = %d, want %d", c.v, got, c.want)
		}
	}
}
