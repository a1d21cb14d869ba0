// Package search implements MLflow's search filter language and order_by clauses for the
// registry's MLflow REST API: runs/search (translated to ClickHouse SQL over registry_runs),
// experiments/search, registered-models/search and model-versions/search (matched in memory).
//
// A filter is comparisons joined by AND:
//
//	metrics.rmse < 1 and params.model = "tree" and tags."mlflow.source.type" = 'LOCAL'
//	attributes.status = 'FINISHED' and attributes.run_id IN ('a', 'b')
//
// Parsing (ParseFilter, ParseOrderBy) knows nothing of what is being searched; a Schema (Runs,
// Experiments, RegisteredModels, ModelVersions) then validates attribute names and value
// types and resolves aliases such as created → start_time. Every error is an *Error, which
// wraps ErrInvalid (MLflow's INVALID_PARAMETER_VALUE).
package search

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error of this package: the filter or order_by the caller
// gave is not valid. The API maps it to MLflow's INVALID_PARAMETER_VALUE.
var ErrInvalid = errors.New("invalid search expression")

// Error says what is wrong with a filter or an order_by clause.
type Error struct {
	What  string // "filter" or "order_by"
	Input string // the text that was rejected (for a schema error, the offending comparison)
	Pos   int    // byte offset of the offending token in Input, or -1
	Msg   string // the reason, for people
}

func (e *Error) Error() string {
	return "invalid " + e.What + " " + strconv.Quote(e.Input) + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// Entity is what a comparison or an order names: metrics.x, params.x, tags.x, attributes.x
// (or a bare x) and datasets.x.
type Entity int

// Entities.
const (
	Metric Entity = iota + 1
	Param
	Tag
	Attribute
	Dataset
)

// String is the entity's canonical prefix, without the dot: "metrics", "params", ….
func (e Entity) String() string {
	switch e {
	case Metric:
		return "metrics"
	case Param:
		return "params"
	case Tag:
		return "tags"
	case Attribute:
		return "attributes"
	case Dataset:
		return "datasets"
	}
	return "entity(" + strconv.Itoa(int(e)) + ")"
}

// prefixes are the spellings MLflow accepts before the dot.
var prefixes = map[string]Entity{
	"metric": Metric, "metrics": Metric,
	"param": Param, "params": Param, "parameter": Param, "parameters": Param,
	"tag": Tag, "tags": Tag,
	"attribute": Attribute, "attributes": Attribute, "attr": Attribute, "run": Attribute,
	"dataset": Dataset, "datasets": Dataset,
}

// Operators.
const (
	OpEq    = "="
	OpNe    = "!="
	OpLt    = "<"
	OpLe    = "<="
	OpGt    = ">"
	OpGe    = ">="
	OpLike  = "LIKE"
	OpILike = "ILIKE"
	OpIn    = "IN"
	OpNotIn = "NOT IN"
)

// Comparison is one term of a filter: Entity.Key Op value. The value is a number (IsNum:
// Num, and its literal as written in Str), a string (Str) or, for IN and NOT IN, a list of
// strings (List).
type Comparison struct {
	Entity Entity
	Key    string
	Op     string
	Str    string
	Num    float64
	IsNum  bool
	List   []string
}

// Filter is comparisons that must all hold. The empty filter matches everything.
type Filter []Comparison

// Order is one order_by clause.
type Order struct {
	Entity Entity
	Key    string
	Desc   bool
}

// String formats the filter so that ParseFilter reads it back to the same comparisons.
func (f Filter) String() string {
	parts := make([]string, len(f))
	for i, c := range f {
		parts[i] = c.String()
	}
	return strings.Join(parts, " AND ")
}

// String formats the comparison in canonical form, e.g. `metrics.acc > 0.9`.
func (c Comparison) String() string {
	return identifier(c.Entity, c.Key) + " " + c.Op + " " + c.value()
}

// value formats the comparison's right-hand side.
func (c Comparison) value() string {
	switch {
	case c.IsNum:
		return c.Str
	case c.List != nil:
		quoted := make([]string, len(c.List))
		for i, s := range c.List {
			quoted[i] = quote(s, '\'')
		}
		return "(" + strings.Join(quoted, ", ") + ")"
	}
	return quote(c.Str, '\'')
}

// String formats the order as an order_by clause, e.g. `metrics.acc DESC`.
func (o Order) String() string {
	if o.Desc {
		return identifier(o.Entity, o.Key) + " DESC"
	}
	return identifier(o.Entity, o.Key) + " ASC"
}

func identifier(e Entity, key string) string {
	if plainKey(key) {
		return e.String() + "." + key
	}
	return e.String() + "." + quote(key, '"')
}

// plainKey reports whether key can be written without quotes.
func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for _, r := range key {
		if !isIdentRune(r) {
			return false
		}
	}
	return true
}

// quote encloses s in q, doubling any q inside.
func quote(s string, q byte) string {
	return string(q) + strings.ReplaceAll(s, string(q), string(q)+string(q)) + string(q)
}
