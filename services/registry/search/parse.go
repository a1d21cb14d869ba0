package search

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseFilter parses an MLflow search filter. The empty (or blank) filter parses to nil.
//
// Grammar (keywords are case-insensitive):
//
//	filter     = comparison { AND comparison }
//	comparison = identifier operator value
//	identifier = [prefix "."] key          prefix: metric(s), param(s), parameter(s), tag(s),
//	                                       attribute(s), attr, run, dataset(s); none: attribute
//	key        = word | "quoted" | `quoted`  a word is letters, digits and _ . - / (dots kept:
//	                                       tags.mlflow.runName); in quotes, double the quote
//	operator   = = | != | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN
//	value      = number | 'string' | "string" | "(" string { "," string } ")"
//
// Metrics compare with numbers using = != < <= > >=; params and tags with strings using
// = != LIKE ILIKE; attributes and datasets are checked further by a Schema. Positions in
// errors are byte offsets from 0.
func ParseFilter(s string) (Filter, error) {
	p := &parser{what: "filter", lx: lexer{src: s}}
	if p.peek().kind == tEOF {
		return p.result(nil)
	}
	var f Filter
	for p.err == nil {
		f = append(f, p.comparison())
		if p.err != nil {
			break
		}
		t := p.next()
		switch {
		case t.kind == tEOF:
			return p.result(f)
		case t.keyword("AND"):
		case t.keyword("OR"):
			p.fail(t.pos, "OR is not supported, join comparisons with AND")
		default:
			p.unexpected(t, "AND")
		}
	}
	return p.result(nil)
}

// ParseOrderBy parses order_by clauses, each `identifier [ASC|DESC]` (ASC by default), the
// identifier written as in a filter.
func ParseOrderBy(clauses []string) ([]Order, error) {
	var orders []Order
	for _, clause := range clauses {
		p := &parser{what: "order_by", lx: lexer{src: clause}}
		if p.peek().kind == tEOF {
			p.fail(-1, "empty clause, expected an identifier and an optional ASC or DESC")
			return nil, p.err
		}
		entity, key := p.identifier()
		o := Order{Entity: entity, Key: key}
		if p.err == nil {
			switch t := p.next(); {
			case t.keyword("DESC"):
				o.Desc = true
			case t.keyword("ASC"), t.kind == tEOF:
			default:
				p.unexpected(t, "ASC or DESC")
			}
		}
		if p.err == nil {
			if t := p.next(); t.kind != tEOF {
				p.unexpected(t, "the end of the clause")
			}
		}
		if p.err != nil {
			return nil, p.err
		}
		orders = append(orders, o)
	}
	return orders, nil
}

type parser struct {
	what   string // "filter" or "order_by", for errors
	lx     lexer
	peeked *token
	err    *Error
}

func (p *parser) result(f Filter) (Filter, error) {
	if p.err != nil {
		return nil, p.err
	}
	return f, nil
}

// fail records the first error; later ones are consequences of it.
func (p *parser) fail(pos int, format string, args ...any) {
	if p.err == nil {
		p.err = &Error{What: p.what, Input: p.lx.src, Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
}

func (p *parser) unexpected(t token, want string) {
	if t.kind == tEOF {
		p.fail(t.pos, "unexpected end of %s, expected %s", p.what, want)
		return
	}
	p.fail(t.pos, "unexpected %q at position %d, expected %s", t.text, t.pos, want)
}

func (p *parser) peek() token {
	if p.peeked == nil {
		t := p.lx.next()
		if t.kind == tBad {
			p.fail(t.pos, "%s", t.val)
			t = token{kind: tEOF, pos: t.pos}
		}
		p.peeked = &t
	}
	return *p.peeked
}

func (p *parser) next() token {
	t := p.peek()
	p.peeked = nil
	return t
}

// reserved words cannot be bare identifiers (quote them to name such an attribute).
var reserved = map[string]bool{"AND": true, "OR": true, "NOT": true, "IN": true, "LIKE": true, "ILIKE": true}

var datasetKeys = map[string]bool{"name": true, "digest": true, "context": true}

// identifier reads [prefix.]key.
func (p *parser) identifier() (Entity, string) {
	t := p.next()
	switch {
	case t.kind == tString && t.quote != '\'':
		if t.val == "" {
			p.fail(t.pos, "empty attribute name at position %d", t.pos)
		}
		return Attribute, t.val
	case t.kind == tLParen:
		p.fail(t.pos, "unexpected \"(\" at position %d, expected an identifier (parentheses only enclose IN lists)", t.pos)
		return 0, ""
	case t.kind != tIdent || reserved[strings.ToUpper(t.text)]:
		p.unexpected(t, "an identifier such as metrics.acc, params.lr, tags.team or status")
		return 0, ""
	}
	prefix, key, dotted := strings.Cut(t.text, ".")
	if !dotted {
		return Attribute, t.text
	}
	entity, ok := prefixes[strings.ToLower(prefix)]
	if !ok {
		p.fail(t.pos, "unknown entity %q at position %d, expected metrics, params, tags, attributes or datasets", prefix, t.pos)
		return 0, ""
	}
	end := t.pos + len(t.text)
	if next := p.peek(); next.kind == tString && next.pos == end {
		if key != "" {
			p.fail(next.pos, "unexpected %q at position %d, a key is either quoted or not", next.text, next.pos)
			return 0, ""
		}
		p.next()
		key = next.val
		if key == "" {
			p.fail(next.pos, "empty key at position %d", next.pos)
		}
	} else if key == "" {
		p.fail(t.pos, "missing key after %q at position %d", t.text, t.pos)
	}
	if entity == Dataset && p.err == nil && !datasetKeys[key] {
		p.fail(t.pos, "unknown dataset key %q, expected name, digest or context", key)
	}
	return entity, key
}

// operator reads one of the operators, upper-cased.
func (p *parser) operator() string {
	t := p.next()
	switch t.kind {
	case tOp:
		switch t.text {
		case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
			return t.text
		}
		p.fail(t.pos, "unknown operator %q at position %d", t.text, t.pos)
		return ""
	case tIdent:
		switch op := strings.ToUpper(t.text); op {
		case OpLike, OpILike, OpIn:
			return op
		case "NOT":
			if n := p.next(); !n.keyword("IN") {
				p.unexpected(n, "IN (NOT only forms NOT IN)")
				return ""
			}
			return OpNotIn
		}
	}
	p.unexpected(t, "an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN or NOT IN)")
	return ""
}

func (p *parser) comparison() Comparison {
	var c Comparison
	if c.Entity, c.Key = p.identifier(); p.err != nil {
		return c
	}
	if c.Op = p.operator(); p.err != nil {
		return c
	}
	t := p.next()
	switch {
	case t.kind == tNumber:
		c.IsNum, c.Str = true, t.text
		c.Num, _ = strconv.ParseFloat(t.text, 64) // the lexer checked it
	case t.kind == tString && t.quote != '`':
		c.Str = t.val
	case t.kind == tLParen:
		c.List = p.list(t)
	default:
		p.unexpected(t, "a value: a number, a quoted string or a list of quoted strings")
	}
	if p.err == nil {
		if msg := shapeError(c); msg != "" {
			p.fail(t.pos, "%s", msg)
		}
	}
	return c
}

// list reads the rest of ('a', 'b', …) after its opening parenthesis.
func (p *parser) list(open token) []string {
	list := []string{}
	for {
		t := p.next()
		if t.kind == tRParen && len(list) == 0 {
			p.fail(open.pos, "empty list at position %d, expected at least one quoted string", open.pos)
			return nil
		}
		if t.kind != tString || t.quote == '`' {
			p.unexpected(t, "a quoted string")
			return nil
		}
		list = append(list, t.val)
		switch t := p.next(); t.kind {
		case tComma:
		case tRParen:
			return list
		default:
			p.unexpected(t, `"," or ")"`)
			return nil
		}
	}
}

var (
	numericOps = map[string]bool{OpEq: true, OpNe: true, OpLt: true, OpLe: true, OpGt: true, OpGe: true}
	stringOps  = map[string]bool{OpEq: true, OpNe: true, OpLike: true, OpILike: true}
	listOps    = map[string]bool{OpIn: true, OpNotIn: true}
)

const (
	numericOpsText = "=, !=, <, <=, > or >="
	stringOpsText  = "=, !=, LIKE or ILIKE"
	textOpsText    = "=, !=, LIKE, ILIKE, IN or NOT IN"
)

// shapeError checks what can be checked without knowing what is searched: operators and
// value types of metrics, params, tags and datasets, and that lists go with IN and NOT IN.
func shapeError(c Comparison) string {
	switch c.Entity {
	case Metric:
		if !numericOps[c.Op] {
			return "metrics compare with " + numericOpsText + ", got " + c.Op
		}
		if !c.IsNum {
			return "metrics compare with numbers, got " + c.value()
		}
	case Param, Tag:
		if !stringOps[c.Op] {
			return c.Entity.String() + " compare with " + stringOpsText + ", got " + c.Op
		}
		if c.IsNum || c.List != nil {
			return c.Entity.String() + " compare with quoted strings, got " + c.value()
		}
	case Dataset:
		if !stringOps[c.Op] && !listOps[c.Op] {
			return "datasets compare with " + textOpsText + ", got " + c.Op
		}
		if c.IsNum {
			return "datasets compare with quoted strings, got " + c.value()
		}
	}
	switch {
	case listOps[c.Op] && c.List == nil:
		return c.Op + " needs a list of quoted strings such as ('a', 'b'), got " + c.value()
	case !listOps[c.Op] && c.List != nil:
		return "a list needs IN or NOT IN, got " + c.Op
	case (c.Op == OpLike || c.Op == OpILike) && c.IsNum:
		return c.Op + " needs a quoted pattern, got " + c.value()
	}
	return ""
}

// Lexer.

type tokenKind int

const (
	tEOF tokenKind = iota
	tIdent
	tNumber
	tString // quoted with ', " or `; val is the unquoted text
	tOp
	tLParen
	tRParen
	tComma
	tBad // val is the error message
)

type token struct {
	kind  tokenKind
	pos   int    // byte offset
	text  string // source text
	val   string // tString: the value; tBad: the message
	quote byte
}

func (t token) keyword(k string) bool { return t.kind == tIdent && strings.EqualFold(t.text, k) }

type lexer struct {
	src string
	pos int
}

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }

func isIdentRune(r rune) bool {
	return isIdentStart(r) || unicode.IsDigit(r) || r == '.' || r == '-' || r == '/'
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func (l *lexer) rune(at int) rune {
	if at >= len(l.src) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(l.src[at:])
	return r
}

func (l *lexer) byteAt(at int) byte {
	if at >= len(l.src) {
		return 0
	}
	return l.src[at]
}

// skipRun advances past runes for which ok holds.
func (l *lexer) skipRun(ok func(rune) bool) {
	for l.pos < len(l.src) {
		r, n := utf8.DecodeRuneInString(l.src[l.pos:])
		if !ok(r) {
			return
		}
		l.pos += n
	}
}

func (l *lexer) next() token {
	l.skipRun(unicode.IsSpace)
	start := l.pos
	if start >= len(l.src) {
		return token{kind: tEOF, pos: start}
	}
	c := l.src[start]
	emit := func(k tokenKind) token { return token{kind: k, pos: start, text: l.src[start:l.pos]} }
	switch {
	case c == '(':
		l.pos++
		return emit(tLParen)
	case c == ')':
		l.pos++
		return emit(tRParen)
	case c == ',':
		l.pos++
		return emit(tComma)
	case c == '=' || c == '!' || c == '<' || c == '>':
		l.skipRun(func(r rune) bool { return r == '=' || r == '!' || r == '<' || r == '>' })
		return emit(tOp)
	case c == '\'' || c == '"' || c == '`':
		return l.quoted(c)
	case isDigit(c) || (c == '.' || c == '-') && l.startsNumber(start):
		return l.number()
	case isIdentStart(l.rune(start)):
		l.skipRun(isIdentRune)
		return emit(tIdent)
	}
	r := l.rune(start)
	return token{kind: tBad, pos: start, val: fmt.Sprintf("unexpected %q at position %d", string(r), start)}
}

// startsNumber reports whether a '-' or '.' at i begins a number (-1, -.5, .5).
func (l *lexer) startsNumber(i int) bool {
	if l.src[i] == '-' {
		i++
	}
	if l.byteAt(i) == '.' {
		i++
	}
	return isDigit(l.byteAt(i))
}

func (l *lexer) digits() {
	for isDigit(l.byteAt(l.pos)) {
		l.pos++
	}
}

func (l *lexer) number() token {
	start := l.pos
	if l.src[l.pos] == '-' {
		l.pos++
	}
	l.digits()
	if l.byteAt(l.pos) == '.' {
		l.pos++
		l.digits()
	}
	if e := l.byteAt(l.pos); e == 'e' || e == 'E' {
		i := l.pos + 1
		if s := l.byteAt(i); s == '+' || s == '-' {
			i++
		}
		if isDigit(l.byteAt(i)) {
			l.pos = i
			l.digits()
		}
	}
	if l.pos < len(l.src) && isIdentRune(l.rune(l.pos)) {
		l.skipRun(isIdentRune)
		text := l.src[start:l.pos]
		return token{kind: tBad, pos: start, val: fmt.Sprintf("invalid number %q at position %d", text, start)}
	}
	text := l.src[start:l.pos]
	f, err := strconv.ParseFloat(text, 64)
	// ClickHouse cannot read subnormal literals back; nobody means them.
	if err != nil && math.IsInf(f, 0) || f != 0 && math.Abs(f) < 0x1p-1022 {
		return token{kind: tBad, pos: start, val: fmt.Sprintf("number %s at position %d is out of range", text, start)}
	}
	return token{kind: tNumber, pos: start, text: text}
}

// quoted reads a string quoted with q; a doubled q stands for one q.
func (l *lexer) quoted(q byte) token {
	start := l.pos
	var b strings.Builder
	for i := start + 1; i < len(l.src); i++ {
		if l.src[i] != q {
			b.WriteByte(l.src[i])
			continue
		}
		if l.byteAt(i+1) == q {
			b.WriteByte(q)
			i++
			continue
		}
		l.pos = i + 1
		return token{kind: tString, pos: start, text: l.src[start:l.pos], val: b.String(), quote: q}
	}
	l.pos = len(l.src)
	return token{kind: tBad, pos: start, val: fmt.Sprintf("unterminated string starting at position %d", start)}
}
