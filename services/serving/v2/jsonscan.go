package v2

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small strict JSON reader over a byte slice (RFC 8259), for the inference request: no
// reflection, no generic maps, no allocation except for unescaped strings. Tensor "data" is
// first validated and counted (countData), then converted by a second, linear pass over the same
// bytes (dataScanner) once the datatype and element count are known and the destination is
// allocated. Inside "data" (only there) the bare tokens NaN, Infinity and -Infinity are read as
// numbers, as Python's json module writes them and Triton's parser reads them.

// maxDepth bounds nesting (Triton also bounds it), so hostile input cannot exhaust the stack.
const maxDepth = 64

// syntaxError is malformed JSON at an offset of the JSON header.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return "invalid JSON at byte " + strconv.Itoa(e.off) + ": " + e.msg
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) fail(msg string) error { return &syntaxError{off: s.i, msg: msg} }

func (s *scanner) unexpected(want string) error {
	if s.i >= len(s.b) {
		return s.fail("unexpected end of input, want " + want)
	}
	return s.fail("unexpected " + strconv.QuoteRune(rune(s.b[s.i])) + ", want " + want)
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// open consumes c ('{' or '[').
func (s *scanner) open(c byte, what string) error {
	if s.peek() != c {
		return s.unexpected(what)
	}
	s.i++
	return nil
}

// member reads the next key of an object whose '{' was consumed; ok is false after the '}'.
func (s *scanner) member(first bool) (key []byte, ok bool, err error) {
	c := s.peek()
	if c == '}' {
		s.i++
		return nil, false, nil
	}
	if !first {
		if c != ',' {
			return nil, false, s.unexpected("',' or '}'")
		}
		s.i++
		s.ws()
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, s.unexpected("a member name")
	}
	key, err = s.str()
	if err != nil {
		return nil, false, err
	}
	if s.peek() != ':' {
		return nil, false, s.unexpected("':'")
	}
	s.i++
	s.ws()
	return key, true, nil
}

// element moves to the next element of an array whose '[' was consumed; ok is false after ']'.
func (s *scanner) element(first bool) (ok bool, err error) {
	c := s.peek()
	if c == ']' {
		s.i++
		return false, nil
	}
	if !first {
		if c != ',' {
			return false, s.unexpected("',' or ']'")
		}
		s.i++
		s.ws()
	}
	return true, nil
}

// rawStr reads a string at s.i, returning its bytes between the quotes still escaped, and
// whether it has escapes. Control characters are refused; escapes are checked.
func (s *scanner) rawStr() (raw []byte, escaped bool, err error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, s.unexpected("a string")
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				s.i = len(s.b)
				return nil, false, s.fail("unterminated string")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					s.i = len(s.b)
					return nil, false, s.fail("unterminated string")
				}
				if _, ok := hex4(s.b[s.i+2 : s.i+6]); !ok {
					return nil, false, s.fail(`invalid \u escape`)
				}
				s.i += 6
			default:
				return nil, false, s.fail("invalid escape in string")
			}
		case c < 0x20:
			return nil, false, s.fail("control character in string")
		default:
			s.i++
		}
	}
	return nil, false, s.fail("unterminated string")
}

// str reads a string and returns its value: a slice of the input when it has no escapes, else
// a new slice.
func (s *scanner) str() ([]byte, error) {
	raw, esc, err := s.rawStr()
	if err != nil || !esc {
		return raw, err
	}
	return unescape(make([]byte, 0, len(raw)), raw), nil
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// unescape appends the value of a validated raw string (see rawStr) to dst. Unpaired
// surrogates become U+FFFD, as encoding/json does.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(raw[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2, ok := hex4(raw[i+2 : i+6]); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							i += 6
							dst = utf8.AppendRune(dst, d)
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

// num reads a number token (RFC 8259 grammar) and returns it.
func (s *scanner) num() ([]byte, error) {
	start := s.i
	b := s.b
	i := s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		s.i = i
		return nil, s.unexpected("a digit")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.i = i
			return nil, s.unexpected("a digit after '.'")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.i = i
			return nil, s.unexpected("a digit in the exponent")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	s.i = i
	return b[start:i], nil
}

// lit consumes the literal word if it is next.
func (s *scanner) lit(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// skip validates and skips one value.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return s.fail("nested too deeply")
	}
	switch s.peek() {
	case '{':
		s.i++
		for first := true; ; first = false {
			_, ok, err := s.member(first)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	case '[':
		s.i++
		for first := true; ; first = false {
			ok, err := s.element(first)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	case '"':
		_, _, err := s.rawStr()
		return err
	case 't':
		return s.word("true")
	case 'f':
		return s.word("false")
	case 'n':
		return s.word("null")
	default:
		_, err := s.num()
		return err
	}
}

func (s *scanner) word(w string) error {
	if !s.lit(w) {
		return s.unexpected(w)
	}
	return nil
}

// dataStats is what countData learns about a tensor's "data".
type dataStats struct {
	leaves   int // scalar elements, all nesting flattened
	strBytes int // bytes of the strings as sent (an upper bound of their values' length)
}

// countData validates the "data" value at s.i — a scalar or nested arrays of scalars, objects
// refused — and counts its elements.
func (s *scanner) countData(depth int, st *dataStats) error {
	if depth > maxDepth {
		return s.fail("data nested too deeply")
	}
	switch s.peek() {
	case '[':
		s.i++
		for first := true; ; first = false {
			ok, err := s.element(first)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := s.countData(depth+1, st); err != nil {
				return err
			}
		}
	case '{':
		return s.fail("tensor data holds an object; want numbers, strings or booleans")
	case '"':
		raw, _, err := s.rawStr()
		st.strBytes += len(raw)
		st.leaves++
		return err
	case 't':
		st.leaves++
		return s.word("true")
	case 'f':
		st.leaves++
		return s.word("false")
	case 'n':
		st.leaves++
		return s.word("null")
	case 'N':
		st.leaves++
		return s.word("NaN")
	case 'I':
		st.leaves++
		return s.word("Infinity")
	case '-':
		st.leaves++
		if s.i+1 < len(s.b) && s.b[s.i+1] == 'I' {
			s.i++
			return s.word("Infinity")
		}
		_, err := s.num()
		return err
	default:
		st.leaves++
		_, err := s.num()
		return err
	}
}

// leafKind is the kind of one scalar of tensor data.
type leafKind uint8

const (
	leafNumber leafKind = iota
	leafString          // tok is the raw string, escaped says whether it has escapes
	leafTrue
	leafFalse
	leafNull
	leafNaN
	leafPosInf
	leafNegInf
)

// dataScanner walks the scalars of "data" that countData accepted, in row-major order.
type dataScanner struct {
	b []byte
	i int
}

// next returns the next scalar; ok is false at the end. It relies on countData's validation.
func (d *dataScanner) next() (kind leafKind, tok []byte, escaped bool, ok bool) {
	b := d.b
	for d.i < len(b) {
		switch c := b[d.i]; c {
		case '[', ']', ',', ' ', '\t', '\n', '\r':
			d.i++
		case '"':
			start := d.i + 1
			i := start
			for b[i] != '"' {
				if b[i] == '\\' {
					escaped = true
					i++
				}
				i++
			}
			d.i = i + 1
			return leafString, b[start:i], escaped, true
		case 't':
			d.i += 4
			return leafTrue, nil, false, true
		case 'f':
			d.i += 5
			return leafFalse, nil, false, true
		case 'n':
			d.i += 4
			return leafNull, nil, false, true
		case 'N':
			d.i += 3
			return leafNaN, nil, false, true
		case 'I':
			d.i += 8
			return leafPosInf, nil, false, true
		default:
			if c == '-' && d.i+1 < len(b) && b[d.i+1] == 'I' {
				d.i += 9
				return leafNegInf, nil, false, true
			}
			start := d.i
			for d.i < len(b) && isNumByte(b[d.i]) {
				d.i++
			}
			return leafNumber, b[start:d.i], false, true
		}
	}
	return 0, nil, false, false
}

func isNumByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}
