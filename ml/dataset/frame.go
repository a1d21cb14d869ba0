// Package dataset holds training and scoring data as column-major frames: one []float64 per
// feature, NaN for a missing value, categorical features as non-negative integer codes stored
// as floats. Column-major suits histogram building and per-feature statistics, which touch
// one feature at a time.
package dataset

import (
	"errors"
	"fmt"
	"math"
)

// Kind is a feature's type.
type Kind uint8

const (
	Numeric     Kind = iota // any float; NaN is missing
	Categorical             // integer codes 0..n-1; NaN (or a negative code) is missing
)

func (k Kind) String() string {
	switch k {
	case Numeric:
		return "numeric"
	case Categorical:
		return "categorical"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Frame is a table of features and, for training data, a label (target) per row.
type Frame struct {
	Names []string    // feature names, in signature order
	Kinds []Kind      // one per feature
	Cols  [][]float64 // Cols[j][i] is feature j of row i
	Label []float64   // nil for unlabelled data
}

// Rows is the number of rows.
func (f *Frame) Rows() int {
	if len(f.Cols) > 0 {
		return len(f.Cols[0])
	}
	return len(f.Label)
}

// Validate checks the frame's shape and codes.
func (f *Frame) Validate() error {
	if len(f.Names) != len(f.Cols) || len(f.Kinds) != len(f.Cols) {
		return fmt.Errorf("frame has %d names, %d kinds and %d columns", len(f.Names), len(f.Kinds), len(f.Cols))
	}
	n := f.Rows()
	seen := make(map[string]bool, len(f.Names))
	for j, c := range f.Cols {
		if seen[f.Names[j]] {
			return fmt.Errorf("feature %q appears twice", f.Names[j])
		}
		seen[f.Names[j]] = true
		if len(c) != n {
			return fmt.Errorf("feature %q has %d rows, want %d", f.Names[j], len(c), n)
		}
		if f.Kinds[j] == Categorical {
			for i, v := range c {
				if !math.IsNaN(v) && (v != math.Trunc(v) || v > 1<<24) {
					return fmt.Errorf("categorical feature %q row %d: %v is not an integer code", f.Names[j], i, v)
				}
			}
		}
	}
	if f.Label != nil && len(f.Label) != n {
		return fmt.Errorf("label has %d rows, want %d", len(f.Label), n)
	}
	for i, y := range f.Label {
		if math.IsNaN(y) || math.IsInf(y, 0) {
			return fmt.Errorf("label of row %d is %v", i, y)
		}
	}
	return nil
}

// Row copies row i's features into dst (grown as needed) and returns it.
func (f *Frame) Row(i int, dst []float64) []float64 {
	dst = dst[:0]
	for _, c := range f.Cols {
		dst = append(dst, c[i])
	}
	return dst
}

// Take returns a frame of the given rows, in that order (columns are copied).
func (f *Frame) Take(rows []int) *Frame {
	out := &Frame{Names: f.Names, Kinds: f.Kinds, Cols: make([][]float64, len(f.Cols))}
	for j, c := range f.Cols {
		nc := make([]float64, len(rows))
		for k, i := range rows {
			nc[k] = c[i]
		}
		out.Cols[j] = nc
	}
	if f.Label != nil {
		out.Label = make([]float64, len(rows))
		for k, i := range rows {
			out.Label[k] = f.Label[i]
		}
	}
	return out
}

// ErrNoRows is returned for a frame without rows where rows are needed.
var ErrNoRows = errors.New("dataset has no rows")
