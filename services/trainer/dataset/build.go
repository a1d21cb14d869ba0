package dataset

import (
	"context"
	"fmt"
	"math"
	"sort"

	mldataset "github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/offline"
	"github.com/flywheel-ml/flywheel/services/features/online"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// FeatureSource is the feature store's point-in-time retrieval: for every row, the view's
// results as of row.TS (offline.Historical — the same computation as the online reads).
type FeatureSource interface {
	View(name string) (*views.View, bool)
	PointInTime(ctx context.Context, view string, rows []offline.Row, emit offline.Emit) error
}

// Column describes one column of the frame: where its values come from and, for a
// categorical column, the vocabulary its codes index (code i is Vocabulary[i]; values not in
// it — at serving time — are missing).
type Column struct {
	Name       string   `json:"name"`   // request field name, or view:feature
	Source     string   `json:"source"` // "request" or "feature"
	Kind       string   `json:"kind"`   // numeric or categorical
	Vocabulary []string `json:"vocabulary,omitempty"`
}

// Built is a training set: the frame (request fields first, then features, in spec order)
// with each row's identity and prediction time.
type Built struct {
	Frame        *mldataset.Frame
	Columns      []Column
	EventIDs     []string
	Entities     []string
	TimesMS      []int64
	ViewVersions map[string]string
}

// ErrLeakage is wrapped by the error of a build that found a feature value from at or after
// its row's prediction time.
var ErrLeakage = fmt.Errorf("feature leakage")

// Build assembles the training set for examples (in prediction-time order, as Join returns).
func Build(ctx context.Context, spec *modelspec.Spec, examples []Example, src FeatureSource) (*Built, error) {
	n := len(examples)
	b := &Built{EventIDs: make([]string, n), Entities: make([]string, n), TimesMS: make([]int64, n), ViewVersions: map[string]string{}}
	label := make([]float64, n)
	for i, ex := range examples {
		b.EventIDs[i], b.Entities[i], b.TimesMS[i], label[i] = ex.EventID, ex.Entity, ex.TimeMS, ex.Label
	}
	var raw [][]any // per column, per row: float64, string or nil (missing)
	for _, f := range spec.RequestFields {
		vals := make([]any, n)
		for i, ex := range examples {
			vals[i] = requestValue(ex.Fields[f.Name], f.Default)
		}
		raw = append(raw, vals)
		b.Columns = append(b.Columns, Column{Name: f.Name, Source: "request", Kind: f.Kind})
	}
	featureCols, err := b.readFeatures(ctx, spec, examples, src)
	if err != nil {
		return nil, err
	}
	raw = append(raw, featureCols...)

	frame := &mldataset.Frame{Label: label}
	for j := range b.Columns {
		col, vocab, err := encodeColumn(&b.Columns[j], raw[j])
		if err != nil {
			return nil, err
		}
		b.Columns[j].Vocabulary = vocab
		kind := mldataset.Numeric
		if b.Columns[j].Kind == modelspec.Categorical {
			kind = mldataset.Categorical
		}
		frame.Names = append(frame.Names, b.Columns[j].Name)
		frame.Kinds = append(frame.Kinds, kind)
		frame.Cols = append(frame.Cols, col)
	}
	if err := frame.Validate(); err != nil {
		return nil, fmt.Errorf("assemble the training frame: %w", err)
	}
	b.Frame = frame
	return b, nil
}

// readFeatures reads every spec feature for every example at its prediction time - 1 ms and
// checks that no value comes from the prediction time or later.
func (b *Built) readFeatures(ctx context.Context, spec *modelspec.Spec, examples []Example, src FeatureSource) ([][]any, error) {
	refs := spec.FeatureRefs()
	byView := map[string][]int{} // view → indexes into refs
	var order []string
	for i, r := range refs {
		if _, ok := byView[r.View]; !ok {
			order = append(order, r.View)
		}
		byView[r.View] = append(byView[r.View], i)
	}
	cols := make([][]any, len(refs))
	for i := range cols {
		cols[i] = make([]any, len(examples))
	}
	rows := make([]offline.Row, len(examples))
	for i, ex := range examples {
		rows[i] = offline.Row{Index: i, Entity: ex.Entity, TS: ex.TimeMS - 1}
	}
	for _, name := range order {
		v, ok := src.View(name)
		if !ok {
			return nil, fmt.Errorf("features: view %q does not exist", name)
		}
		b.ViewVersions[name] = v.Version
		idx := make([]int, 0, len(byView[name])) // feature index in the view per ref
		for _, ri := range byView[name] {
			fi, ok := v.Feature(refs[ri].Feature)
			if !ok {
				return nil, fmt.Errorf("features: view %s has no feature %q", name, refs[ri].Feature)
			}
			idx = append(idx, fi)
		}
		err := src.PointInTime(ctx, name, rows, func(row offline.Row, results []agg.Result) error {
			predictedAt := examples[row.Index].TimeMS
			for k, ri := range byView[name] {
				res := results[idx[k]]
				if res.EventTime >= predictedAt {
					return fmt.Errorf("%w: %s of event %s holds a value from event time %d, at or after its prediction time %d",
						ErrLeakage, refs[ri], examples[row.Index].EventID, res.EventTime, predictedAt)
				}
				val := online.ValueOf(v, idx[k], res) // the default when absent, as serving sees it
				cols[ri][row.Index] = featureValue(val.Value)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read %s as of each prediction time: %w", name, err)
		}
	}
	for _, r := range refs {
		b.Columns = append(b.Columns, Column{Name: r.String(), Source: "feature"})
	}
	return cols, nil
}

func requestValue(v, def any) any {
	if v == nil {
		v = def
	}
	switch x := v.(type) {
	case float64, string:
		return x
	case bool:
		if x {
			return 1.0
		}
		return 0.0
	case int:
		return float64(x)
	}
	return nil
}

func featureValue(v any) any {
	switch x := v.(type) {
	case float64, string:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case bool:
		if x {
			return 1.0
		}
		return 0.0
	}
	return nil
}

// encodeColumn turns a column's raw values into frame values: numbers as they are, strings
// as codes into the sorted vocabulary of the values seen, absent values as NaN. A feature
// column's kind is set here from its values (strings make it categorical).
func encodeColumn(c *Column, raw []any) ([]float64, []string, error) {
	hasString, hasNumber := false, false
	for _, v := range raw {
		switch v.(type) {
		case string:
			hasString = true
		case float64:
			hasNumber = true
		}
	}
	if c.Kind == "" {
		c.Kind = modelspec.Numeric
		if hasString {
			c.Kind = modelspec.Categorical
		}
	}
	out := make([]float64, len(raw))
	if c.Kind == modelspec.Numeric {
		for i, v := range raw {
			switch x := v.(type) {
			case float64:
				out[i] = x
			case nil:
				out[i] = math.NaN()
			default:
				return nil, nil, fmt.Errorf("column %s is numeric but row %d holds %q", c.Name, i, x)
			}
		}
		return out, nil, nil
	}
	if hasNumber {
		return nil, nil, fmt.Errorf("column %s is categorical but holds numbers; declare it numeric or send strings", c.Name)
	}
	seen := map[string]bool{}
	for _, v := range raw {
		if s, ok := v.(string); ok {
			seen[s] = true
		}
	}
	vocab := make([]string, 0, len(seen))
	for s := range seen {
		vocab = append(vocab, s)
	}
	sort.Strings(vocab)
	code := make(map[string]float64, len(vocab))
	for i, s := range vocab {
		code[s] = float64(i)
	}
	for i, v := range raw {
		if s, ok := v.(string); ok {
			out[i] = code[s]
		} else {
			out[i] = math.NaN()
		}
	}
	return out, vocab, nil
}
