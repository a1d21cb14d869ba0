package dataset

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
)

// CSVOptions say how to read a CSV file into a frame.
type CSVOptions struct {
	Label       string                 // the label column; "" for unlabelled data
	Categorical func(name string) bool // which feature columns are categorical codes; nil for none
}

// ReadCSV reads a CSV file with a header line into a frame. Fields are plain numbers (no
// quoting); an empty field is a missing value. Every row must have the header's number of
// fields; errors name the line and column.
func ReadCSV(r io.Reader, opt CSVOptions) (*Frame, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	header, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if len(header) == 0 {
		return nil, fmt.Errorf("read header: empty file")
	}
	names := bytes.Split(header, []byte{','})
	labelIdx := -1
	f := &Frame{}
	colOf := make([]int, len(names)) // CSV column → frame column, -1 for the label
	for i, n := range names {
		name := string(n)
		if name == opt.Label && opt.Label != "" {
			labelIdx, colOf[i] = i, -1
			continue
		}
		colOf[i] = len(f.Names)
		kind := Numeric
		if opt.Categorical != nil && opt.Categorical(name) {
			kind = Categorical
		}
		f.Names, f.Kinds = append(f.Names, name), append(f.Kinds, kind)
		f.Cols = append(f.Cols, nil)
	}
	if opt.Label != "" && labelIdx < 0 {
		return nil, fmt.Errorf("label column %q is not in the header", opt.Label)
	}
	for line := 2; ; line++ {
		rec, err := readLine(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if len(rec) == 0 {
			continue
		}
		field := 0
		for start := 0; start <= len(rec); field++ {
			end := bytes.IndexByte(rec[start:], ',')
			if end < 0 {
				end = len(rec)
			} else {
				end += start
			}
			if field >= len(names) {
				return nil, fmt.Errorf("line %d: more than %d fields", line, len(names))
			}
			v := math.NaN()
			if end > start {
				v, err = strconv.ParseFloat(string(rec[start:end]), 64)
				if err != nil {
					return nil, fmt.Errorf("line %d column %s: %q is not a number", line, names[field], rec[start:end])
				}
			}
			if field == labelIdx {
				if math.IsNaN(v) {
					return nil, fmt.Errorf("line %d: the label is missing", line)
				}
				f.Label = append(f.Label, v)
			} else {
				f.Cols[colOf[field]] = append(f.Cols[colOf[field]], v)
			}
			start = end + 1
		}
		if field != len(names) {
			return nil, fmt.Errorf("line %d: %d fields, want %d", line, field, len(names))
		}
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// readLine returns the next line without its line end, or io.EOF after the last one.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		buf := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			line, err = br.ReadSlice('\n')
			buf = append(buf, line...)
		}
		line = buf
	}
	if err == io.EOF && len(line) > 0 {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}
