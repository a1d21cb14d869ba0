// Package validate turns raw request bodies and Kafka values into validated events: it splits
// a body into items (one object, an array, or NDJSON), decodes each strictly (no duplicate
// keys, no invalid UTF-8, bounded nesting), checks it against the stream's JSON Schema and
// the envelope rules, and explains every rejection with the JSON pointer it concerns.
package validate

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// Body errors: the whole body is refused (HTTP 400, or one DLQ record for a Kafka value).
var (
	ErrEmpty    = errors.New("the body is empty")
	ErrNotJSON  = errors.New("the body must be a JSON object, a JSON array of objects, or NDJSON")
	ErrTooMany  = errors.New("too many events in one body")
	ErrBadArray = errors.New("the JSON array is not valid")
)

// Item is one event candidate with its exact original bytes and its position in the body.
type Item struct {
	Raw   []byte
	Index int
}

// Split cuts body into items. With ndjson each non-blank line is an item, and a broken line
// is only that item's problem; otherwise the body is one JSON object or one array of them,
// and a syntax error anywhere refuses the whole body.
func Split(body []byte, ndjson bool, maxItems int) ([]Item, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, ErrEmpty
	}
	if ndjson {
		var items []Item
		index := 0
		for line := range bytes.SplitSeq(trimmed, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			if len(items) >= maxItems {
				return nil, fmt.Errorf("%w: the limit is %d", ErrTooMany, maxItems)
			}
			items = append(items, Item{Raw: line, Index: index})
			index++
		}
		return items, nil
	}
	switch trimmed[0] {
	case '{':
		dec := jsontext.NewDecoder(bytes.NewReader(trimmed))
		if _, err := dec.ReadValue(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotJSON, err)
		}
		if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: data after the object (send NDJSON as application/x-ndjson)", ErrNotJSON)
		}
		return []Item{{Raw: trimmed, Index: 0}}, nil
	case '[':
		return splitArray(trimmed, maxItems)
	default:
		return nil, ErrNotJSON
	}
}

func splitArray(body []byte, maxItems int) ([]Item, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	if _, err := dec.ReadToken(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadArray, err)
	}
	var items []Item
	for dec.PeekKind() != ']' {
		if dec.PeekKind() == 0 {
			_, err := dec.ReadValue()
			return nil, fmt.Errorf("%w: %w", ErrBadArray, err)
		}
		if len(items) >= maxItems {
			return nil, fmt.Errorf("%w: the limit is %d", ErrTooMany, maxItems)
		}
		start := dec.InputOffset()
		v, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadArray, err)
		}
		// Slice the body rather than copy: ReadValue's buffer is reused.
		end := dec.InputOffset()
		raw := bytes.TrimLeft(body[start:end], " \t\r\n,")
		if !bytes.Equal(raw, v) {
			raw = bytes.Clone(v)
		}
		items = append(items, Item{Raw: raw, Index: len(items)})
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadArray, err)
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the closing ]", ErrBadArray)
	}
	return items, nil
}

// depthExceeds reports whether raw nests objects and arrays deeper than limit. It runs before
// decoding so a hostile body cannot make the decoder recurse deeply.
func depthExceeds(raw []byte, limit int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range raw {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > limit {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}
