package schemas

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// AppendPredictionJSON appends p encoded as JSON, the same document json.Marshal produces
// up to spacing and escaping, without reflection: serving logs every prediction, so this
// runs once per request. Output must be valid JSON and is copied as is. A NaN or infinite
// number is an error, as in encoding/json; values of Features and Request that are not
// strings, numbers, booleans or null are encoded by encoding/json.
func AppendPredictionJSON(dst []byte, p *Prediction) ([]byte, error) {
	dst = append(dst, `{"request_id":`...)
	dst = AppendJSONString(dst, p.RequestID)
	dst = append(dst, `,"model":`...)
	dst = AppendJSONString(dst, p.Model)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(p.Version), 10)
	if p.Alias != "" {
		dst = append(dst, `,"alias":`...)
		dst = AppendJSONString(dst, p.Alias)
	}
	dst = append(dst, `,"entity":`...)
	dst = AppendJSONString(dst, p.Entity)
	dst = append(dst, `,"features":`...)
	var err error
	if dst, err = appendAnyMap(dst, p.Features); err != nil {
		return dst, fmt.Errorf("features: %w", err)
	}
	if len(p.Sources) > 0 {
		dst = append(dst, `,"sources":`...)
		dst = appendSortedMap(dst, p.Sources, AppendJSONString)
	}
	if len(p.Request) > 0 {
		dst = append(dst, `,"request":`...)
		if dst, err = appendAnyMap(dst, p.Request); err != nil {
			return dst, fmt.Errorf("request: %w", err)
		}
	}
	dst = append(dst, `,"output":`...)
	if len(p.Output) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, p.Output...)
	}
	dst = append(dst, `,"score":`...)
	if dst, err = AppendJSONFloat(dst, p.Score); err != nil {
		return dst, fmt.Errorf("score: %w", err)
	}
	if len(p.Scores) > 0 {
		dst = append(dst, `,"scores":`...)
		for _, v := range p.Scores {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return dst, fmt.Errorf("scores: unsupported value %v", v)
			}
		}
		dst = appendSortedMap(dst, p.Scores, func(b []byte, v float64) []byte { b, _ = AppendJSONFloat(b, v); return b })
	}
	if p.Shadow {
		dst = append(dst, `,"shadow":true`...)
	}
	dst = append(dst, `,"ts":"`...)
	dst = p.TS.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","latency_us":`...)
	dst = strconv.AppendInt(dst, p.LatencyUS, 10)
	return append(dst, '}'), nil
}

// appendSortedMap appends m as a JSON object with its keys in order, as encoding/json does.
func appendSortedMap[V any](dst []byte, m map[string]V, value func([]byte, V) []byte) []byte {
	var buf [32]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, k)
		dst = append(dst, ':')
		dst = value(dst, m[k])
	}
	return append(dst, '}')
}

// appendAnyMap is appendSortedMap for JSON values; nil is null.
func appendAnyMap(dst []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	var err error
	dst = appendSortedMap(dst, m, func(b []byte, v any) []byte {
		var e error
		if b, e = appendJSONValue(b, v); e != nil && err == nil {
			err = e
		}
		return b
	})
	return dst, err
}

func appendJSONValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return AppendJSONString(dst, x), nil
	case float64:
		return AppendJSONFloat(dst, x)
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case json.Number:
		if x == "" {
			return append(dst, '0'), nil
		}
		return append(dst, x...), nil
	default:
		b, err := json.Marshal(x)
		return append(dst, b...), err
	}
}

// appendJSONFloat formats f as encoding/json does.
func AppendJSONFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, fmt.Errorf("unsupported value %v", f)
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' { // e-09 → e-9, as encoding/json
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}
