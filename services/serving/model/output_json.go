package model

import (
	"math"
	"strconv"
)

// MarshalJSON encodes the output as encoding/json would from its tags, without reflection:
// serving logs one per prediction. A NaN or infinite score is an error.
func (o Output) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 48+24*len(o.Scores))
	b = append(b, `{"score":`...)
	var err error
	if b, err = appendFloat(b, o.Score); err != nil {
		return nil, err
	}
	if o.Label != nil {
		b = append(b, `,"label":`...)
		b = strconv.AppendInt(b, int64(*o.Label), 10)
	}
	if len(o.Scores) > 0 {
		b = append(b, `,"scores":[`...)
		for i, s := range o.Scores {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendFloat(b, s); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// appendFloat formats f as encoding/json does.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, &unsupportedFloat{f}
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

type unsupportedFloat struct{ f float64 }

func (e *unsupportedFloat) Error() string {
	return "json: unsupported value: " + strconv.FormatFloat(e.f, 'g', -1, 64)
}
