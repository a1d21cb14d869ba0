package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/parquet-go/parquet-go"

	mldataset "github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
)

// The snapshot is the immutable record of a training set: a Parquet file with one row per
// example — event_id, entity, time_ms, label, then one column per frame column (optional
// DOUBLE for numeric columns, optional STRING holding the original value for categorical
// ones; null is missing) — and, in the file's key-value metadata, the column definitions
// (order, kinds, vocabularies) and feature-view versions. Its bytes depend only on the data,
// so its sha256 names the dataset version and a retrain from it is bit for bit the same.
const (
	metaColumns      = "flywheel.columns"
	metaViewVersions = "flywheel.view_versions"
	metaFormat       = "flywheel.snapshot_format"
	snapshotFormat   = "1"
)

var fixedColumns = []string{"event_id", "entity", "time_ms", "label"}

// WriteSnapshot encodes b as Parquet and returns the bytes and their sha256 (hex).
func WriteSnapshot(b *Built) ([]byte, string, error) {
	group := parquet.Group{"event_id": parquet.String(), "entity": parquet.String(), "time_ms": parquet.Int(64),
		"label": parquet.Leaf(parquet.DoubleType)}
	for _, c := range b.Columns {
		if slices.Contains(fixedColumns, c.Name) {
			return nil, "", fmt.Errorf("column %s collides with a snapshot column", c.Name)
		}
		if c.Kind == modelspec.Categorical {
			group[c.Name] = parquet.Optional(parquet.String())
		} else {
			group[c.Name] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
		}
	}
	cols, err := json.Marshal(b.Columns)
	if err != nil {
		return nil, "", err
	}
	versions, err := json.Marshal(b.ViewVersions) // map keys are sorted: stable bytes
	if err != nil {
		return nil, "", err
	}
	schema := parquet.NewSchema("training_set", group)
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, schema, parquet.Compression(&parquet.Zstd), parquet.CreatedBy("flywheel-trainer", "1", ""),
		parquet.KeyValueMetadata(metaFormat, snapshotFormat), parquet.KeyValueMetadata(metaColumns, string(cols)),
		parquet.KeyValueMetadata(metaViewVersions, string(versions)))
	leaf := map[string]int{}
	for i, path := range schema.Columns() {
		leaf[path[0]] = i
	}
	byName := map[string]int{}
	for j, c := range b.Columns {
		byName[c.Name] = j
	}
	f := b.Frame
	rows := make([]parquet.Row, 0, 1024)
	flush := func() error {
		_, err := w.WriteRows(rows)
		rows = rows[:0]
		return err
	}
	for i := range f.Rows() {
		row := make(parquet.Row, len(leaf))
		for name, ci := range leaf {
			switch name {
			case "event_id":
				row[ci] = parquet.ByteArrayValue([]byte(b.EventIDs[i])).Level(0, 0, ci)
			case "entity":
				row[ci] = parquet.ByteArrayValue([]byte(b.Entities[i])).Level(0, 0, ci)
			case "time_ms":
				row[ci] = parquet.Int64Value(b.TimesMS[i]).Level(0, 0, ci)
			case "label":
				row[ci] = parquet.DoubleValue(f.Label[i]).Level(0, 0, ci)
			default:
				j := byName[name]
				v := f.Cols[j][i]
				switch {
				case math.IsNaN(v):
					row[ci] = parquet.Value{}.Level(0, 0, ci)
				case b.Columns[j].Kind == modelspec.Categorical:
					row[ci] = parquet.ByteArrayValue([]byte(b.Columns[j].Vocabulary[int(v)])).Level(0, 1, ci)
				default:
					row[ci] = parquet.DoubleValue(v).Level(0, 1, ci)
				}
			}
		}
		rows = append(rows, row)
		if len(rows) == cap(rows) {
			if err := flush(); err != nil {
				return nil, "", fmt.Errorf("write snapshot rows: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return nil, "", fmt.Errorf("write snapshot rows: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, "", fmt.Errorf("finish snapshot: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:]), nil
}

// ReadSnapshot decodes a snapshot written by WriteSnapshot back into the training set it
// recorded; errors name what is wrong with the file.
func ReadSnapshot(data []byte) (*Built, error) {
	file, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("open snapshot: %w", err)
	}
	if v, _ := file.Lookup(metaFormat); v != snapshotFormat {
		return nil, fmt.Errorf("snapshot format %q is not supported (want %s)", v, snapshotFormat)
	}
	b := &Built{ViewVersions: map[string]string{}}
	raw, _ := file.Lookup(metaColumns)
	if err := json.Unmarshal([]byte(raw), &b.Columns); err != nil {
		return nil, fmt.Errorf("snapshot column definitions: %w", err)
	}
	raw, _ = file.Lookup(metaViewVersions)
	if err := json.Unmarshal([]byte(raw), &b.ViewVersions); err != nil {
		return nil, fmt.Errorf("snapshot view versions: %w", err)
	}
	n := int(file.NumRows())
	f := &mldataset.Frame{Label: make([]float64, n), Cols: make([][]float64, len(b.Columns))}
	leaf := map[string]int{}
	for i, path := range file.Schema().Columns() {
		leaf[path[0]] = i
	}
	codes := make([]map[string]float64, len(b.Columns))
	for j, c := range b.Columns {
		if _, ok := leaf[c.Name]; !ok {
			return nil, fmt.Errorf("snapshot has no column %s", c.Name)
		}
		kind := mldataset.Numeric
		if c.Kind == modelspec.Categorical {
			kind = mldataset.Categorical
			codes[j] = make(map[string]float64, len(c.Vocabulary))
			for k, s := range c.Vocabulary {
				codes[j][s] = float64(k)
			}
		}
		f.Names, f.Kinds = append(f.Names, c.Name), append(f.Kinds, kind)
		f.Cols[j] = make([]float64, n)
	}
	b.EventIDs, b.Entities, b.TimesMS = make([]string, n), make([]string, n), make([]int64, n)
	reader := parquet.NewReader(bytes.NewReader(data))
	defer reader.Close()
	buf := make([]parquet.Row, 512)
	for i := 0; i < n; {
		k, err := reader.ReadRows(buf)
		for _, row := range buf[:k] {
			if err := b.fillRow(f, i, row, leaf, codes); err != nil {
				return nil, fmt.Errorf("snapshot row %d: %w", i, err)
			}
			i++
		}
		if errors.Is(err, io.EOF) {
			if i != n {
				return nil, fmt.Errorf("snapshot ends after %d of %d rows", i, n)
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read snapshot rows: %w", err)
		}
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	b.Frame = f
	return b, nil
}

func (b *Built) fillRow(f *mldataset.Frame, i int, row parquet.Row, leaf map[string]int, codes []map[string]float64) error {
	val := func(name string) parquet.Value { return row[leaf[name]] }
	b.EventIDs[i] = val("event_id").String()
	b.Entities[i] = val("entity").String()
	b.TimesMS[i] = val("time_ms").Int64()
	f.Label[i] = val("label").Double()
	for j, c := range b.Columns {
		v := val(c.Name)
		switch {
		case v.IsNull():
			f.Cols[j][i] = math.NaN()
		case codes[j] != nil:
			code, ok := codes[j][v.String()]
			if !ok {
				return fmt.Errorf("column %s holds %q, which is not in its vocabulary", c.Name, v.String())
			}
			f.Cols[j][i] = code
		default:
			f.Cols[j][i] = v.Double()
		}
	}
	return nil
}
