package catalog

import (
	"encoding/json"
	"math"
	"regexp"
	"slices"
)

// Plan is a stream schema compiled for the fast path: a checker for the common subset of
// JSON Schema (type, enum of strings, bounds, lengths, pattern, date-time, properties,
// required, additionalProperties: false, items) that validates straight from the token
// stream without building maps. It only ever answers "certainly valid"; anything else goes
// to the full validator, which decides and explains. Schemas using other keywords get no
// plan and always take the full validator.
type Plan struct {
	Root *Node
	// Top-level properties the envelope reads (event id, entity, event time), in that order
	// of discovery; the fast path records their raw values.
	EnvelopeFields []string
}

// Node is one compiled (sub)schema.
type Node struct {
	Types    uint8 // bit set of type*; 0 means any type
	Enum     map[string]struct{}
	Min, Max float64 // NaN when absent
	ExclMin  float64
	ExclMax  float64
	MinLen   int // -1 when absent
	MaxLen   int
	Pattern  *regexp.Regexp
	DateTime bool

	Props        map[string]*Node
	Required     []string
	ReqIndex     map[string]int // position in Required, for a bit set of seen fields
	NoAdditional bool

	Items              *Node
	MinItems, MaxItems int
}

// Type bits.
const (
	TypeNull uint8 = 1 << iota
	TypeBool
	TypeInteger
	TypeNumber
	TypeString
	TypeArray
	TypeObject
)

var typeBits = map[string]uint8{"null": TypeNull, "boolean": TypeBool, "integer": TypeInteger,
	"number": TypeNumber, "string": TypeString, "array": TypeArray, "object": TypeObject}

// annotations have no effect on validation.
var annotations = map[string]bool{"$schema": true, "$id": true, "$comment": true, "title": true,
	"description": true, "examples": true, "default": true, "x-flywheel": true, "deprecated": true,
	"readOnly": true, "writeOnly": true}

func compilePlan(raw []byte, meta Meta) *Plan {
	var doc map[string]any
	if json.Unmarshal(raw, &doc) != nil {
		return nil
	}
	root, ok := compileNode(doc)
	if !ok {
		return nil
	}
	p := &Plan{Root: root}
	for _, f := range append(slices.Clone(meta.EventID.Fields), meta.Entity, meta.EventTime) {
		if !slices.Contains(p.EnvelopeFields, f) {
			p.EnvelopeFields = append(p.EnvelopeFields, f)
		}
	}
	return p
}

func compileNode(s map[string]any) (*Node, bool) {
	n := &Node{Min: math.NaN(), Max: math.NaN(), ExclMin: math.NaN(), ExclMax: math.NaN(), MinLen: -1, MaxLen: -1, MinItems: -1, MaxItems: -1}
	for k, v := range s {
		if annotations[k] {
			continue
		}
		ok := true
		switch k {
		case "type":
			switch t := v.(type) {
			case string:
				n.Types, ok = typeBits[t]
			case []any:
				for _, x := range t {
					name, _ := x.(string)
					bit, known := typeBits[name]
					ok = ok && known
					n.Types |= bit
				}
			default:
				ok = false
			}
		case "enum":
			arr, isArr := v.([]any)
			ok = isArr
			n.Enum = map[string]struct{}{}
			for _, x := range arr {
				str, isStr := x.(string)
				ok = ok && isStr
				n.Enum[str] = struct{}{}
			}
		case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
			f, isNum := v.(float64)
			ok = isNum
			switch k {
			case "minimum":
				n.Min = f
			case "maximum":
				n.Max = f
			case "exclusiveMinimum":
				n.ExclMin = f
			default:
				n.ExclMax = f
			}
		case "minLength", "maxLength", "minItems", "maxItems":
			f, isNum := v.(float64)
			ok = isNum && f >= 0 && f == math.Trunc(f)
			switch k {
			case "minLength":
				n.MinLen = int(f)
			case "maxLength":
				n.MaxLen = int(f)
			case "minItems":
				n.MinItems = int(f)
			default:
				n.MaxItems = int(f)
			}
		case "pattern":
			str, isStr := v.(string)
			re, err := regexp.Compile(str)
			// Go's RE2 and ECMA 262 agree on plain patterns only; anything fancier is left to
			// the full validator.
			ok = isStr && err == nil && plainPattern.MatchString(str)
			n.Pattern = re
		case "format":
			n.DateTime = v == "date-time"
			ok = n.DateTime
		case "properties":
			props, isObj := v.(map[string]any)
			ok = isObj
			n.Props = map[string]*Node{}
			for name, sub := range props {
				subMap, isMap := sub.(map[string]any)
				if !isMap {
					return nil, false
				}
				child, childOK := compileNode(subMap)
				if !childOK {
					return nil, false
				}
				n.Props[name] = child
			}
		case "required":
			arr, isArr := v.([]any)
			ok = isArr
			for _, x := range arr {
				str, isStr := x.(string)
				ok = ok && isStr
				n.Required = append(n.Required, str)
			}
		case "additionalProperties":
			b, isBool := v.(bool)
			ok = isBool
			n.NoAdditional = isBool && !b
		case "items":
			sub, isMap := v.(map[string]any)
			ok = isMap
			if isMap {
				n.Items, ok = compileNode(sub)
			}
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	if len(n.Required) > 64 {
		return nil, false
	}
	n.ReqIndex = map[string]int{}
	for i, r := range n.Required {
		n.ReqIndex[r] = i
	}
	return n, true
}

var plainPattern = regexp.MustCompile(`^[\^$A-Za-z0-9_\[\]{},.*+?|()\-: ]*$`)
