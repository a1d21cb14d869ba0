// Package learner is the trainer's adapter to the ml module: it turns a spec's algorithm and
// hyperparameters into ml training calls, scores training sets through a model's own
// signature, and packages models as ml artifacts.
package learner

import (
	"fmt"
	"math"

	mldataset "github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
)

// Remap returns rows of b as a frame in the column order and categorical codes of cols (a
// model's signature): columns are matched by name, categorical values by their original
// string, so a model trained on another dataset — with other categories seen — reads this one
// correctly. Values the model never saw are missing (NaN), as at serving time. A column the
// model needs and b lacks is an error.
func Remap(b *dataset.Built, rows []int, cols []dataset.Column) (*mldataset.Frame, error) {
	byName := make(map[string]int, len(b.Columns))
	for j, c := range b.Columns {
		byName[c.Name] = j
	}
	f := &mldataset.Frame{Cols: make([][]float64, len(cols))}
	for j, c := range cols {
		src, ok := byName[c.Name]
		if !ok {
			return nil, fmt.Errorf("the model needs column %s, which this dataset does not have", c.Name)
		}
		kind := mldataset.Numeric
		if c.Kind == modelspec.Categorical {
			kind = mldataset.Categorical
		}
		f.Names, f.Kinds = append(f.Names, c.Name), append(f.Kinds, kind)
		in := b.Frame.Cols[src]
		out := make([]float64, len(rows))
		if kind == mldataset.Numeric {
			if b.Columns[src].Kind == modelspec.Categorical {
				return nil, fmt.Errorf("column %s is numeric for the model but categorical in this dataset", c.Name)
			}
			for i, r := range rows {
				out[i] = in[r]
			}
		} else {
			code := make(map[string]float64, len(c.Vocabulary))
			for k, s := range c.Vocabulary {
				code[s] = float64(k)
			}
			vocab := b.Columns[src].Vocabulary
			for i, r := range rows {
				v := in[r]
				out[i] = math.NaN()
				if !math.IsNaN(v) && int(v) < len(vocab) {
					if m, ok := code[vocab[int(v)]]; ok {
						out[i] = m
					}
				}
			}
		}
		f.Cols[j] = out
	}
	f.Label = make([]float64, len(rows))
	for i, r := range rows {
		f.Label[i] = b.Frame.Label[r]
	}
	return f, nil
}
