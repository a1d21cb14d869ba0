package dataset

import (
	"errors"
	"fmt"
	"math"

	"github.com/flywheel-ml/flywheel/schemas/modelspec"
)

// ErrUnfit is wrapped by every refusal to train on a dataset: the message says what to fix.
var ErrUnfit = errors.New("dataset not fit for training")

// Summary describes a built dataset for the run record and the dataset version.
type Summary struct {
	Rows      int     `json:"rows"`
	LabelRate float64 `json:"label_rate,omitempty"` // binary: share of positive labels
	FromMS    int64   `json:"from_ms"`
	ToMS      int64   `json:"to_ms"`
	// Missing is the share of missing values per column.
	Missing map[string]float64 `json:"missing"`
}

// Check runs the checks before training: minimum rows, both classes present, the label
// rate within bounds, and no column entirely missing.
func Check(spec *modelspec.Spec, b *Built) (Summary, error) {
	f := b.Frame
	n := f.Rows()
	sum := Summary{Rows: n, Missing: map[string]float64{}}
	if n > 0 {
		sum.FromMS, sum.ToMS = b.TimesMS[0], b.TimesMS[n-1]
	}
	if n < spec.Training.MinRows {
		return sum, fmt.Errorf("%w: %d labelled rows in the last %s, training.min_rows is %d (are labels arriving on %s, naming events of %s?)",
			ErrUnfit, n, spec.Training.Window, spec.Training.MinRows, spec.Label.Stream, spec.PredictionStream)
	}
	for j, c := range f.Cols {
		missing := 0
		for _, v := range c {
			if math.IsNaN(v) {
				missing++
			}
		}
		sum.Missing[f.Names[j]] = float64(missing) / float64(n)
		if missing == n {
			return sum, fmt.Errorf("%w: column %s is missing in all %d rows", ErrUnfit, f.Names[j], n)
		}
	}
	if spec.Task == modelspec.Binary {
		pos := 0
		for _, y := range f.Label {
			switch y {
			case 1:
				pos++
			case 0:
			default:
				return sum, fmt.Errorf("%w: binary label %s is %v in some row; labels must be true/false or 0/1", ErrUnfit, spec.Label.Field, y)
			}
		}
		sum.LabelRate = float64(pos) / float64(n)
		if pos == 0 || pos == n {
			return sum, fmt.Errorf("%w: only one class present (%d of %d rows positive); a classifier needs both", ErrUnfit, pos, n)
		}
		r := spec.Training.LabelRate
		if sum.LabelRate < r.Min || sum.LabelRate > r.Max {
			return sum, fmt.Errorf("%w: label rate %.4f outside training.label_rate [%v, %v]", ErrUnfit, sum.LabelRate, r.Min, r.Max)
		}
	}
	return sum, nil
}

// Split is the time-based holdout: the latest fraction of rows by prediction time is the
// test set, never shuffled across time, so the test set is the future of the training set.
// Rows at the boundary's exact millisecond all go to the test set.
func Split(spec *modelspec.Spec, b *Built) (train, test []int, err error) {
	n := len(b.TimesMS)
	cut := n - int(math.Ceil(float64(n)*spec.Training.Holdout))
	for cut > 0 && b.TimesMS[cut-1] == b.TimesMS[min(cut, n-1)] {
		cut--
	}
	if cut <= 0 || cut >= n {
		return nil, nil, fmt.Errorf("%w: a holdout of %v leaves %d training and %d test rows", ErrUnfit, spec.Training.Holdout, cut, n-cut)
	}
	train, test = make([]int, cut), make([]int, n-cut)
	for i := range train {
		train[i] = i
	}
	for i := range test {
		test[i] = cut + i
	}
	if spec.Task == modelspec.Binary {
		pos := 0
		for _, i := range test {
			if b.Frame.Label[i] == 1 {
				pos++
			}
		}
		if pos == 0 || pos == len(test) {
			return nil, nil, fmt.Errorf("%w: the holdout (latest %d rows) has only one class; AUC cannot be measured — collect more labels or raise training.holdout", ErrUnfit, len(test))
		}
	}
	return train, test, nil
}
