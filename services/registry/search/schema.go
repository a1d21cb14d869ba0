package search

import (
	"maps"
	"slices"
	"strings"
)

// AttrType is the type of an attribute's values.
type AttrType int

// Attribute types.
const (
	TextAttr    AttrType = iota + 1 // compared with = != LIKE ILIKE IN NOT IN and quoted strings
	NumericAttr                     // compared with = != < <= > >= and numbers
)

// Schema is what one kind of object can be searched and ordered by. The package's schemas
// (Runs, Experiments, RegisteredModels, ModelVersions) follow MLflow; do not modify them.
type Schema struct {
	Name          string              // plural, for messages: "runs"
	Entities      []Entity            // what a filter may name
	OrderEntities []Entity            // what an order_by may name
	Attrs         map[string]AttrType // attributes a filter may name
	OrderAttrs    map[string]AttrType // attributes an order_by may name
	Aliases       map[string]string   // other names of attributes: created → start_time
	Default       []Order             // the order when none is given
	Tiebreak      []Order             // appended (unless their key is ordered by already) so the order is total
}

var runAttrs = map[string]AttrType{
	"run_id": TextAttr, "run_name": TextAttr, "user_id": TextAttr, "status": TextAttr,
	"artifact_uri": TextAttr, "lifecycle_stage": TextAttr,
	"start_time": NumericAttr, "end_time": NumericAttr,
}

// Runs is the schema of runs/search.
var Runs = &Schema{
	Name:          "runs",
	Entities:      []Entity{Attribute, Metric, Param, Tag},
	OrderEntities: []Entity{Attribute, Metric, Param, Tag},
	Attrs:         runAttrs,
	OrderAttrs:    runAttrs,
	Aliases: map[string]string{"created": "start_time", "Created": "start_time",
		"run name": "run_name", "Run name": "run_name", "Run Name": "run_name"},
	Default:  []Order{{Entity: Attribute, Key: "start_time", Desc: true}},
	Tiebreak: []Order{{Entity: Attribute, Key: "run_id"}},
}

// Experiments is the schema of experiments/search.
var Experiments = &Schema{
	Name:          "experiments",
	Entities:      []Entity{Attribute, Tag},
	OrderEntities: []Entity{Attribute},
	Attrs:         map[string]AttrType{"name": TextAttr, "creation_time": NumericAttr, "last_update_time": NumericAttr},
	OrderAttrs: map[string]AttrType{"name": TextAttr, "experiment_id": TextAttr,
		"creation_time": NumericAttr, "last_update_time": NumericAttr},
	Default:  []Order{{Entity: Attribute, Key: "creation_time", Desc: true}, {Entity: Attribute, Key: "experiment_id"}},
	Tiebreak: []Order{{Entity: Attribute, Key: "experiment_id", Desc: true}},
}

// RegisteredModels is the schema of registered-models/search.
var RegisteredModels = &Schema{
	Name:          "registered models",
	Entities:      []Entity{Attribute, Tag},
	OrderEntities: []Entity{Attribute},
	Attrs:         map[string]AttrType{"name": TextAttr},
	OrderAttrs: map[string]AttrType{"name": TextAttr,
		"creation_timestamp": NumericAttr, "last_updated_timestamp": NumericAttr},
	Aliases:  map[string]string{"timestamp": "creation_timestamp"},
	Default:  []Order{{Entity: Attribute, Key: "name"}},
	Tiebreak: []Order{{Entity: Attribute, Key: "name"}},
}

// ModelVersions is the schema of model-versions/search.
var ModelVersions = &Schema{
	Name:          "model versions",
	Entities:      []Entity{Attribute, Tag},
	OrderEntities: []Entity{Attribute},
	Attrs: map[string]AttrType{"name": TextAttr, "run_id": TextAttr, "source_path": TextAttr,
		"version_number": NumericAttr},
	OrderAttrs: map[string]AttrType{"name": TextAttr, "version_number": NumericAttr,
		"creation_timestamp": NumericAttr, "last_updated_timestamp": NumericAttr},
	Tiebreak: []Order{{Entity: Attribute, Key: "name"}, {Entity: Attribute, Key: "version_number", Desc: true}},
}

// Check validates the attribute comparisons of f against allowedAttrs (attribute name →
// whether it is numeric): an unknown attribute, or an operator or value that does not suit
// the attribute's type, is an error, as is a dataset comparison (Match has none to compare).
// It resolves no aliases and leaves metrics, params and tags alone; Schema.Filter does more.
func (f Filter) Check(allowedAttrs map[string]bool) error {
	attrs := make(map[string]AttrType, len(allowedAttrs))
	for name, numeric := range allowedAttrs {
		attrs[name] = TextAttr
		if numeric {
			attrs[name] = NumericAttr
		}
	}
	s := Schema{Name: "these objects", Entities: []Entity{Attribute, Metric, Param, Tag}, Attrs: attrs}
	_, err := s.Filter(f)
	return err
}

// Filter validates f for s — the entities it names, attribute names, operators and value
// types — and returns it with attribute aliases replaced by their names (created →
// start_time). Match and RunsQuery expect a filter that went through here.
func (s *Schema) Filter(f Filter) (Filter, error) {
	if f == nil {
		return nil, nil
	}
	out := make(Filter, len(f))
	for i, c := range f {
		input := c.String()
		fail := func(msg string) (Filter, error) {
			return nil, &Error{What: "filter", Input: input, Pos: -1, Msg: msg}
		}
		if !slices.Contains(s.Entities, c.Entity) {
			return fail(s.Name + " cannot be filtered by " + c.Entity.String() + "; use " + entityList(s.Entities))
		}
		if c.Entity == Attribute {
			name := c.Key
			if canon, ok := s.Aliases[name]; ok {
				c.Key = canon
			}
			typ, ok := s.Attrs[c.Key]
			if !ok {
				return fail("unknown attribute " + quote(name, '"') + ", valid attributes are " + keyList(s.Attrs))
			}
			if msg := attrError(name, typ, c); msg != "" {
				return fail(msg)
			}
		}
		if c.List != nil {
			c.List = slices.Clone(c.List)
		}
		out[i] = c
	}
	return out, nil
}

func attrError(name string, typ AttrType, c Comparison) string {
	switch typ {
	case NumericAttr:
		if !numericOps[c.Op] {
			return name + " compares with " + numericOpsText + ", got " + c.Op
		}
		if !c.IsNum {
			return name + " compares with numbers, got " + c.value()
		}
	case TextAttr:
		if !stringOps[c.Op] && !listOps[c.Op] {
			return name + " compares with " + textOpsText + ", got " + c.Op
		}
		if c.IsNum {
			return name + " compares with quoted strings, got " + c.value()
		}
	}
	return ""
}

// OrderBy validates orders for s and returns them with attribute aliases resolved, s.Default
// in place of none, and s.Tiebreak appended.
func (s *Schema) OrderBy(orders []Order) ([]Order, error) {
	if len(orders) == 0 {
		orders = s.Default
	}
	out := make([]Order, 0, len(orders)+len(s.Tiebreak))
	for _, o := range orders {
		input := o.String()
		fail := func(msg string) ([]Order, error) {
			return nil, &Error{What: "order_by", Input: input, Pos: -1, Msg: msg}
		}
		if !slices.Contains(s.OrderEntities, o.Entity) {
			return fail(s.Name + " cannot be ordered by " + o.Entity.String() + "; use " + entityList(s.OrderEntities))
		}
		if o.Entity == Attribute {
			name := o.Key
			if canon, ok := s.Aliases[name]; ok {
				o.Key = canon
			}
			if _, ok := s.OrderAttrs[o.Key]; !ok {
				return fail("unknown attribute " + quote(name, '"') + " to order by, valid attributes are " + keyList(s.OrderAttrs))
			}
		}
		out = append(out, o)
	}
	for _, t := range s.Tiebreak {
		if !slices.ContainsFunc(out, func(o Order) bool { return o.Entity == t.Entity && o.Key == t.Key }) {
			out = append(out, t)
		}
	}
	return out, nil
}

func entityList(es []Entity) string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.String()
	}
	return strings.Join(names, ", ")
}

func keyList(m map[string]AttrType) string {
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}
