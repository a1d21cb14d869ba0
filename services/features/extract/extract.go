// Package extract turns an event's JSON data into the inputs of a feature view: the entity
// key (the view's join keys) and one agg.Value per feature, after the feature's filter.
package extract

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// ErrNoEntity is returned when the event lacks a join key of the view.
var ErrNoEntity = errors.New("event lacks a join key")

// Extractor reads one view's inputs.
type Extractor struct {
	view   *views.View
	needed map[string]bool // top-level fields the view reads: join keys, inputs, filters
	pool   sync.Pool       // *scanner
}

type scanner struct {
	dec jsontext.Decoder
	rd  bytes.Reader
	buf []byte
}

// New returns an extractor for v.
func New(v *views.View) *Extractor {
	x := &Extractor{view: v, needed: map[string]bool{}}
	for _, k := range v.Entities {
		x.needed[k] = true
	}
	for _, f := range v.Features {
		if f.Field != "" {
			x.needed[f.Field] = true
		}
		if f.Filter != nil {
			x.needed[f.Filter.Field] = true
		}
	}
	x.pool.New = func() any { return new(scanner) }
	return x
}

// EntityKey joins join-key values with "|" (one key: the value itself).
func EntityKey(values []string) string { return strings.Join(values, "|") }

// Extract reads the fields the view needs from data (a JSON object) and returns the entity
// key and the feature inputs. It scans the object's tokens and decodes only those fields.
func (x *Extractor) Extract(data []byte) (string, []agg.Value, error) {
	s := x.pool.Get().(*scanner)
	defer x.pool.Put(s)
	s.rd.Reset(data)
	s.dec.Reset(&s.rd)
	if tok, err := s.dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return "", nil, fmt.Errorf("decode event data: not a JSON object")
	}
	obj := make(map[string]any, len(x.needed))
	for s.dec.PeekKind() != '}' {
		name, err := s.dec.ReadValue()
		if err != nil {
			return "", nil, fmt.Errorf("decode event data: %w", err)
		}
		if s.buf, err = jsontext.AppendUnquote(s.buf[:0], name); err != nil {
			return "", nil, fmt.Errorf("decode event data: %w", err)
		}
		if !x.needed[string(s.buf)] {
			if _, err := s.dec.ReadValue(); err != nil {
				return "", nil, fmt.Errorf("decode event data: %w", err)
			}
			continue
		}
		key := string(s.buf)
		switch s.dec.PeekKind() {
		case '{', '[':
			if _, err := s.dec.ReadValue(); err != nil {
				return "", nil, fmt.Errorf("decode event data: %w", err)
			}
			obj[key] = struct{}{} // present but not a scalar: no feature takes it
		default:
			tok, err := s.dec.ReadToken()
			if err != nil {
				return "", nil, fmt.Errorf("decode event data: %w", err)
			}
			switch tok.Kind() {
			case '"':
				obj[key] = tok.String()
			case '0':
				f, err := tok.Float()
				if err != nil {
					return "", nil, fmt.Errorf("decode event data: %s: %w", key, err)
				}
				obj[key] = f
			case 't', 'f':
				obj[key] = tok.Bool()
			}
		}
	}
	return x.FromMap(obj)
}

// FromMap is Extract on decoded data.
func (x *Extractor) FromMap(obj map[string]any) (string, []agg.Value, error) {
	keys := make([]string, len(x.view.Entities))
	for i, k := range x.view.Entities {
		s, ok := scalar(obj[k])
		if !ok || s == "" {
			return "", nil, fmt.Errorf("%w %q", ErrNoEntity, k)
		}
		keys[i] = s
	}
	vals := make([]agg.Value, len(x.view.Features))
	for i, f := range x.view.Features {
		if f.Filter != nil && !passes(f.Filter, obj[f.Filter.Field]) {
			continue
		}
		if f.Agg == views.Count {
			vals[i] = agg.Value{Kind: agg.Num, Num: 1}
			continue
		}
		switch v := obj[f.Field].(type) {
		case float64:
			vals[i] = agg.Value{Kind: agg.Num, Num: v}
		case string:
			if views.Windowed(f.Agg) {
				if n, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(n, 0) && !math.IsNaN(n) {
					vals[i] = agg.Value{Kind: agg.Num, Num: n}
				}
				continue
			}
			vals[i] = agg.Value{Kind: agg.Str, Str: v}
		case bool:
			if views.Windowed(f.Agg) {
				vals[i] = agg.Value{Kind: agg.Num, Num: map[bool]float64{true: 1, false: 0}[v]}
			} else {
				vals[i] = agg.Value{Kind: agg.Str, Str: strconv.FormatBool(v)}
			}
		}
	}
	return EntityKey(keys), vals, nil
}

func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10), true
		}
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func passes(f *views.Filter, v any) bool {
	if f.Op == "in" {
		list, _ := f.Value.([]any)
		for _, item := range list {
			if compare(v, item) == 0 {
				return true
			}
		}
		return false
	}
	c := compare(v, f.Value)
	switch f.Op {
	case "eq":
		return c == 0
	case "ne":
		return c != 0 && c != incomparable
	case "gt":
		return c == 1
	case "ge":
		return c == 1 || c == 0
	case "lt":
		return c == -1
	case "le":
		return c == -1 || c == 0
	}
	return false
}

const incomparable = 2

func compare(a, b any) int {
	switch x := a.(type) {
	case float64:
		var y float64
		switch bv := b.(type) {
		case float64:
			y = bv
		case int:
			y = float64(bv)
		default:
			return incomparable
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case string:
		y, ok := b.(string)
		if !ok {
			return incomparable
		}
		return strings.Compare(x, y)
	case bool:
		y, ok := b.(bool)
		if !ok {
			return incomparable
		}
		if x == y {
			return 0
		}
		return incomparable
	}
	return incomparable
}
