package offline

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// ParquetWriter writes point-in-time rows as a Parquet file for training: a `row` column
// (the request index), the join keys, the row timestamp (milliseconds, UTC) and one optional
// column per feature — DOUBLE for aggregates and numeric lasts, STRING otherwise; a missing
// value is the feature's default, or null when the default is null.
type ParquetWriter struct {
	w        *parquet.Writer
	columns  []string
	view     *views.View
	features []int // feature indices, in request order
	strs     map[int]bool
	joinKeys []string
	tsName   string
}

// NewParquetWriter starts a file for features (indices into v.Features).
func NewParquetWriter(out io.Writer, v *views.View, features []int, tsName string) (*ParquetWriter, error) {
	group := parquet.Group{"row": parquet.Int(64), tsName: parquet.Timestamp(parquet.Millisecond)}
	pw := &ParquetWriter{view: v, features: features, strs: map[int]bool{}, joinKeys: v.Entities, tsName: tsName}
	for _, k := range v.Entities {
		group[k] = parquet.String()
	}
	for _, i := range features {
		f := v.Features[i]
		if _, dup := group[f.Name]; dup {
			return nil, fmt.Errorf("feature %s collides with a key column", f.Name)
		}
		if f.Agg == views.Last {
			if _, numeric := f.Default.(float64); !numeric {
				if _, isInt := f.Default.(int); !isInt {
					pw.strs[i] = true
					group[f.Name] = parquet.Optional(parquet.String())
					continue
				}
			}
		}
		group[f.Name] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
	}
	schema := parquet.NewSchema(v.Name, group)
	for _, path := range schema.Columns() {
		pw.columns = append(pw.columns, path[0])
	}
	pw.w = parquet.NewWriter(out, schema, parquet.Compression(&parquet.Zstd))
	return pw, nil
}

// Write adds one row; keys are the row's join-key values.
func (pw *ParquetWriter) Write(index int, keys []string, ts int64, results []agg.Result) error {
	row := make(parquet.Row, len(pw.columns))
	for ci, name := range pw.columns {
		switch {
		case name == "row":
			row[ci] = parquet.Int64Value(int64(index)).Level(0, 0, ci)
		case name == pw.tsName:
			row[ci] = parquet.Int64Value(ts).Level(0, 0, ci)
		default:
			if k := indexOf(pw.joinKeys, name); k >= 0 {
				row[ci] = parquet.ByteArrayValue([]byte(keys[k])).Level(0, 0, ci)
				continue
			}
			fi, _ := pw.view.Feature(name)
			row[ci] = pw.featureValue(fi, results[fi]).Level(0, 1, ci)
			if row[ci].IsNull() {
				row[ci] = parquet.Value{}.Level(0, 0, ci)
			}
		}
	}
	_, err := pw.w.WriteRows([]parquet.Row{row})
	return err
}

func (pw *ParquetWriter) featureValue(i int, res agg.Result) parquet.Value {
	v := res.Value
	if res.Status != agg.Present {
		v = pw.view.Features[i].Default
	}
	switch x := v.(type) {
	case nil:
		return parquet.Value{}
	case string:
		if pw.strs[i] {
			return parquet.ByteArrayValue([]byte(x))
		}
		return parquet.Value{}
	case float64:
		if pw.strs[i] {
			return parquet.ByteArrayValue([]byte(fmt.Sprint(x)))
		}
		return parquet.DoubleValue(x)
	case int:
		if pw.strs[i] {
			return parquet.ByteArrayValue([]byte(fmt.Sprint(x)))
		}
		return parquet.DoubleValue(float64(x))
	}
	return parquet.Value{}
}

// Close finishes the file.
func (pw *ParquetWriter) Close() error { return pw.w.Close() }

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
