package validate

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
)

// scanner validates one event against a Plan straight from the token stream. It answers
// only "certainly valid" (true) or "not sure" (false): any error, any value it does not
// handle exactly (long or exponent numbers, unusual timestamps) sends the event to the full
// validator, which decides and explains.
type scanner struct {
	dec   jsontext.Decoder
	rd    bytes.Reader
	raw   []byte
	buf   []byte
	plan  *catalog.Plan
	found [][]byte // raw values of plan.EnvelopeFields, by position
}

var scanners = sync.Pool{New: func() any { return new(scanner) }}

// fastValidate returns the raw values of the envelope fields when raw is certainly valid.
func fastValidate(plan *catalog.Plan, raw []byte) (map[string]any, bool) {
	s := scanners.Get().(*scanner)
	defer scanners.Put(s)
	s.raw, s.plan = raw, plan
	s.rd.Reset(raw)
	s.dec.Reset(&s.rd)
	s.found = s.found[:0]
	for range plan.EnvelopeFields {
		s.found = append(s.found, nil)
	}
	if !s.value(plan.Root, true) {
		return nil, false
	}
	if _, err := s.dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	fields := make(map[string]any, len(plan.EnvelopeFields))
	for i, name := range plan.EnvelopeFields {
		v := s.found[i]
		switch {
		case v == nil:
		case v[0] == '"':
			str, err := jsontext.AppendUnquote(nil, v)
			if err != nil {
				return nil, false
			}
			fields[name] = string(str)
		case v[0] == '-' || (v[0] >= '0' && v[0] <= '9'):
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return nil, false
			}
			fields[name] = f
		default:
			fields[name] = true // some other kind: the envelope rules reject it with a reason
		}
	}
	return fields, true
}

func (s *scanner) value(n *catalog.Node, top bool) bool {
	switch s.dec.PeekKind() {
	case '{':
		return s.object(n, top)
	case '[':
		return s.array(n)
	case '"':
		v, err := s.dec.ReadValue()
		return err == nil && s.str(n, v)
	case '0':
		v, err := s.dec.ReadValue()
		return err == nil && s.number(n, v)
	case 't', 'f':
		_, err := s.dec.ReadValue()
		return err == nil && allows(n, catalog.TypeBool) && n.Enum == nil
	case 'n':
		_, err := s.dec.ReadValue()
		return err == nil && allows(n, catalog.TypeNull) && n.Enum == nil
	}
	return false
}

func allows(n *catalog.Node, t uint8) bool { return n.Types == 0 || n.Types&t != 0 }

func (s *scanner) object(n *catalog.Node, top bool) bool {
	if !allows(n, catalog.TypeObject) || n.Enum != nil {
		return false
	}
	if _, err := s.dec.ReadToken(); err != nil {
		return false
	}
	var seen uint64
	for s.dec.PeekKind() != '}' {
		nameRaw, err := s.dec.ReadValue()
		if err != nil || len(nameRaw) < 2 {
			return false
		}
		name := nameRaw[1 : len(nameRaw)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			if s.buf, err = jsontext.AppendUnquote(s.buf[:0], nameRaw); err != nil {
				return false
			}
			name = s.buf
		}
		child := n.Props[string(name)]
		if child == nil && n.NoAdditional {
			return false
		}
		if i, ok := n.ReqIndex[string(name)]; ok {
			seen |= 1 << i
		}
		envIndex := -1
		if top {
			for i, f := range s.plan.EnvelopeFields {
				if f == string(name) {
					envIndex = i
				}
			}
		}
		start := s.dec.InputOffset()
		if child == nil {
			if _, err := s.dec.ReadValue(); err != nil {
				return false
			}
		} else if !s.value(child, false) {
			return false
		}
		if envIndex >= 0 {
			s.found[envIndex] = bytes.TrimLeft(s.raw[start:s.dec.InputOffset()], " \t\r\n:")
		}
	}
	if _, err := s.dec.ReadToken(); err != nil {
		return false
	}
	return seen == 1<<len(n.Required)-1
}

func (s *scanner) array(n *catalog.Node) bool {
	if !allows(n, catalog.TypeArray) || n.Enum != nil {
		return false
	}
	if _, err := s.dec.ReadToken(); err != nil {
		return false
	}
	count := 0
	for s.dec.PeekKind() != ']' {
		if n.Items != nil {
			if !s.value(n.Items, false) {
				return false
			}
		} else if _, err := s.dec.ReadValue(); err != nil {
			return false
		}
		count++
	}
	if _, err := s.dec.ReadToken(); err != nil {
		return false
	}
	return (n.MinItems < 0 || count >= n.MinItems) && (n.MaxItems < 0 || count <= n.MaxItems)
}

func (s *scanner) str(n *catalog.Node, raw []byte) bool {
	if !allows(n, catalog.TypeString) {
		return false
	}
	v := raw[1 : len(raw)-1]
	if bytes.IndexByte(v, '\\') >= 0 {
		var err error
		if s.buf, err = jsontext.AppendUnquote(s.buf[:0], raw); err != nil {
			return false
		}
		v = s.buf
	}
	if n.Enum != nil {
		if _, ok := n.Enum[string(v)]; !ok {
			return false
		}
	}
	if n.MinLen >= 0 || n.MaxLen >= 0 {
		runes := utf8.RuneCount(v)
		if (n.MinLen >= 0 && runes < n.MinLen) || (n.MaxLen >= 0 && runes > n.MaxLen) {
			return false
		}
	}
	if n.Pattern != nil && !n.Pattern.Match(v) {
		return false
	}
	if n.DateTime && !plainDateTime(v) {
		return false
	}
	return true
}

// plainDateTime accepts the common RFC 3339 shape YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM), which
// the full validator's date-time check accepts too. Anything else (leap seconds, lower-case
// t or z) is left to it.
func plainDateTime(v []byte) bool {
	const layout = "dddd-dd-ddTdd:dd:dd"
	if len(v) < len(layout)+1 {
		return false
	}
	for i := range len(layout) {
		if c := v[i]; (layout[i] == 'd' && (c < '0' || c > '9')) || (layout[i] != 'd' && c != layout[i]) {
			return false
		}
	}
	rest := v[len(layout):]
	if rest[0] == '.' {
		digits := 0
		for digits+1 < len(rest) && rest[digits+1] >= '0' && rest[digits+1] <= '9' {
			digits++
		}
		if digits < 1 || digits > 9 {
			return false
		}
		rest = rest[digits+1:]
	}
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' && isDigits(rest[1:3]) && isDigits(rest[4:6]):
	default:
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(v), len(v)))
	return err == nil
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (s *scanner) number(n *catalog.Node, raw []byte) bool {
	// Up to 15 characters every decimal maps to a distinct float64, so float comparisons agree
	// with the full validator's exact rational ones.
	if len(raw) > 15 || bytes.ContainsAny(raw, "eE") || n.Enum != nil {
		return false
	}
	if n.Types != 0 && n.Types&catalog.TypeNumber == 0 && n.Types&catalog.TypeInteger == 0 {
		return false
	}
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(raw), len(raw)), 64)
	if err != nil {
		return false
	}
	if n.Types != 0 && n.Types&catalog.TypeNumber == 0 && f != math.Trunc(f) {
		return false
	}
	return (math.IsNaN(n.Min) || f >= n.Min) && (math.IsNaN(n.Max) || f <= n.Max) &&
		(math.IsNaN(n.ExclMin) || f > n.ExclMin) && (math.IsNaN(n.ExclMax) || f < n.ExclMax)
}
