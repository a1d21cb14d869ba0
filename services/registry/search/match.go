package search

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Record is one searchable object as Match and Less see it. Attr returns a string, or an
// int64 or float64 for numeric attributes; ok is false when the object has no such value
// (a run without end time). Objects without metrics or params return false for them.
type Record interface {
	Attr(key string) (v any, ok bool)
	Tag(key string) (string, bool)
	Metric(key string) (float64, bool)
	Param(key string) (string, bool)
}

// Match reports whether r satisfies every comparison of f, with MLflow's semantics: a
// comparison on a metric, param, tag or attribute r lacks is false (even !=); LIKE is
// case-sensitive and ILIKE not (see Like). f should come from Schema.Filter, which resolves
// attribute aliases; datasets never match.
func (f Filter) Match(r Record) bool {
	for _, c := range f {
		if !c.match(r) {
			return false
		}
	}
	return true
}

func (c Comparison) match(r Record) bool {
	switch c.Entity {
	case Metric:
		v, ok := r.Metric(c.Key)
		return ok && c.IsNum && compare(cmpFloat(v, c.Num), c.Op)
	case Param:
		v, ok := r.Param(c.Key)
		return ok && c.matchString(v)
	case Tag:
		v, ok := r.Tag(c.Key)
		return ok && c.matchString(v)
	case Attribute:
		v, ok := r.Attr(c.Key)
		if !ok {
			return false
		}
		switch v := v.(type) {
		case string:
			return !c.IsNum && c.matchString(v)
		case int64:
			return c.IsNum && compare(c.cmpInt(v), c.Op)
		case int:
			return c.IsNum && compare(c.cmpInt(int64(v)), c.Op)
		case float64:
			return c.IsNum && compare(cmpFloat(v, c.Num), c.Op)
		}
	}
	return false
}

func (c Comparison) matchString(v string) bool {
	switch c.Op {
	case OpEq:
		return v == c.Str
	case OpNe:
		return v != c.Str
	case OpLike:
		return Like(v, c.Str, false)
	case OpILike:
		return Like(v, c.Str, true)
	case OpIn:
		return slices.Contains(c.List, v)
	case OpNotIn:
		return !slices.Contains(c.List, v)
	}
	return false // ordering operators do not apply to strings
}

// intValue is the comparison's number as an int64 when it was written as one.
func (c Comparison) intValue() (int64, bool) {
	if !c.IsNum {
		return 0, false
	}
	n, err := strconv.ParseInt(c.Str, 10, 64)
	return n, err == nil
}

// cmpInt compares an integer attribute with the comparison's number exactly, as ClickHouse
// compares Int64 with Int64 or Float64. NaN never occurs: the parser reads no NaN.
func (c Comparison) cmpInt(v int64) int {
	if n, ok := c.intValue(); ok {
		return cmp.Compare(v, n)
	}
	return cmpIntFloat(v, c.Num)
}

// cmpIntFloat compares a with f exactly (no rounding of a to float64).
func cmpIntFloat(a int64, f float64) int {
	switch {
	case f >= 0x1p63:
		return -1
	case f < -0x1p63:
		return 1
	}
	t := math.Trunc(f)
	if c := cmp.Compare(a, int64(t)); c != 0 {
		return c
	}
	return cmp.Compare(t, f) // a == trunc(f): the fraction decides
}

// cmpFloat is -1, 0 or +1, or 2 when either is NaN (no ordering operator holds, != does).
func cmpFloat(a, b float64) int {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return 2
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compare(c int, op string) bool {
	switch op {
	case OpEq:
		return c == 0
	case OpNe:
		return c != 0
	case OpLt:
		return c == -1
	case OpLe:
		return c == -1 || c == 0
	case OpGt:
		return c == 1
	case OpGe:
		return c == 1 || c == 0
	}
	return false
}

// Less reports whether a sorts before b under orders (from Schema.OrderBy). Objects lacking
// the value sort last in either direction; NaN metrics sort after numbers and before
// missing ones, as in MLflow.
func Less(orders []Order, a, b Record) bool {
	for _, o := range orders {
		va, ra := sortValue(o, a)
		vb, rb := sortValue(o, b)
		if ra != rb {
			return ra < rb
		}
		if ra != 0 {
			continue // both missing, or both NaN
		}
		c := cmpValues(va, vb)
		if o.Desc {
			c = -c
		}
		if c != 0 {
			return c < 0
		}
	}
	return false
}

// sortValue returns the value r sorts by and its rank: 0 for a value, 1 for NaN, 2 for none.
func sortValue(o Order, r Record) (any, int) {
	var v any
	var ok bool
	switch o.Entity {
	case Metric:
		var f float64
		if f, ok = r.Metric(o.Key); ok && math.IsNaN(f) {
			return nil, 1
		}
		v = f
	case Param:
		v, ok = r.Param(o.Key)
	case Tag:
		v, ok = r.Tag(o.Key)
	case Attribute:
		v, ok = r.Attr(o.Key)
		if f, isFloat := v.(float64); isFloat && math.IsNaN(f) {
			return nil, 1
		}
	}
	if !ok || v == nil {
		return nil, 2
	}
	return v, 0
}

// cmpValues orders strings bytewise and numbers numerically; strings sort after numbers.
func cmpValues(a, b any) int {
	switch a := a.(type) {
	case string:
		if b, ok := b.(string); ok {
			return strings.Compare(a, b)
		}
		return 1
	case int:
		return cmpValues(int64(a), b)
	case int64:
		switch b := b.(type) {
		case int64:
			return cmp.Compare(a, b)
		case int:
			return cmp.Compare(a, int64(b))
		case float64:
			return cmpIntFloat(a, b)
		}
	case float64:
		switch b := b.(type) {
		case float64:
			return cmp.Compare(a, b)
		case int64, int:
			return -cmpValues(b, a)
		}
	}
	return -1
}

// Like reports whether s matches the SQL LIKE pattern: % is any run of characters, _ is one
// character (code point), \% \_ and \\ are literal, and a backslash before anything else is
// itself literal. The whole of s must match. With fold, both sides are lower-cased first,
// rune by rune, where the lower case has the same UTF-8 length (ClickHouse's lowerUTF8).
func Like(s, pattern string, fold bool) bool {
	if fold {
		s, pattern = lowerUTF8(s), lowerUTF8(pattern)
	}
	p := parseLike(pattern)
	text := []rune(s)
	// Greedy match with backtracking to the last %: O(len(s)·len(p)) at worst.
	ti, pi := 0, 0
	starP, starT := -1, 0
	for ti < len(text) {
		switch {
		case pi < len(p) && !p[pi].any && (p[pi].one || p[pi].r == text[ti]):
			ti++
			pi++
		case pi < len(p) && p[pi].any:
			starP, starT = pi, ti
			pi++
		case starP >= 0:
			starT++
			ti, pi = starT, starP+1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi].any {
		pi++
	}
	return pi == len(p)
}

type likeElem struct {
	any bool // %
	one bool // _
	r   rune // a literal
}

func parseLike(pattern string) []likeElem {
	var out []likeElem
	rs := []rune(pattern)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; {
		case r == '%':
			out = append(out, likeElem{any: true})
		case r == '_':
			out = append(out, likeElem{one: true})
		case r == '\\' && i+1 < len(rs) && (rs[i+1] == '%' || rs[i+1] == '_' || rs[i+1] == '\\'):
			i++
			out = append(out, likeElem{r: rs[i]})
		default:
			out = append(out, likeElem{r: r})
		}
	}
	return out
}

// likePattern rewrites pattern so that ClickHouse's LIKE reads it as Like does: every
// backslash in the result escapes %, _ or a backslash.
func likePattern(pattern string) string {
	var b strings.Builder
	for _, e := range parseLike(pattern) {
		switch {
		case e.any:
			b.WriteByte('%')
		case e.one:
			b.WriteByte('_')
		case e.r == '%' || e.r == '_' || e.r == '\\':
			b.WriteByte('\\')
			b.WriteRune(e.r)
		default:
			b.WriteRune(e.r)
		}
	}
	return b.String()
}

// lowerUTF8 lower-cases the runes whose lower case has the same UTF-8 length, like
// ClickHouse's lowerUTF8; other runes (İ, ẞ) stay as they are.
func lowerUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if l := unicode.ToLower(r); r != utf8.RuneError && utf8.RuneLen(l) == n {
			b.WriteRune(l)
		} else {
			b.WriteString(s[:n]) // invalid bytes and length-changing runes stay as they are
		}
		s = s[n:]
	}
	return b.String()
}
