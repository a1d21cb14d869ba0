package model

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/online"
)

// Instance is one thing to score: its entity keys and request-time fields, and the feature
// values the caller supplies itself (they win over the store's).
type Instance struct {
	Fields   map[string]any
	Supplied map[string]any
	// Encoded says the supplied values are already what the model reads (categorical codes,
	// not category names): a whole input row sent as one tensor.
	Encoded bool
}

// Entity is the instance's entity key for the join keys (values joined with "|", as the
// feature store keys its state), or an error naming the key that is absent.
func (in Instance) Entity(joinKeys []string) (string, error) {
	if len(joinKeys) == 0 {
		return "", nil
	}
	parts := make([]string, len(joinKeys))
	for i, k := range joinKeys {
		v, ok := in.Fields[k]
		if !ok || v == nil {
			return "", fmt.Errorf("the instance has no %q (the entity key)", k)
		}
		s, err := keyString(v)
		if err != nil {
			return "", fmt.Errorf("entity key %q: %w", k, err)
		}
		parts[i] = s
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return strings.Join(parts, "|"), nil
}

// keyString formats a join key as the feature store does: strings as they are, integers
// without a fraction.
func keyString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "", fmt.Errorf("empty")
		}
		return x, nil
	case float64:
		if x != float64(int64(x)) || x > 1<<53 || x < -(1<<53) {
			return "", fmt.Errorf("%v is not an integer or string", x)
		}
		return strconv.FormatInt(int64(x), 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("a %T is not a string or number", v)
}

// Used is what a prediction read, for the prediction log: each input's value as the caller
// or the store gave it (categories as strings, not codes), and where it came from.
type Used struct {
	Values  map[string]any
	Sources map[string]string
}

// Assemble fills row (len(p.Columns)) for in. fetched holds the store's answer for the
// instance's entity, and refIndex maps p.Refs[j] to its position in fetched (nil: the
// same order). Absent inputs take their default and are counted in used.Sources.
func (p *Plan) Assemble(in Instance, fetched []online.Value, refIndex []int, row []float64, used *Used) error {
	var err error
	for i := range p.Columns {
		c := &p.Columns[i]
		var raw any
		var src string
		if v, ok := in.Supplied[c.Name]; ok {
			raw, src = v, Supplied
		} else if c.Feature == "" {
			if v, ok := in.Fields[c.Name]; ok && v != nil {
				raw, src = v, Request
			}
		}
		if src == "" && c.Feature != "" {
			// fetched by position: the plan's refs are in signature order
			j := p.colRef[i]
			if refIndex != nil {
				j = refIndex[j]
			}
			if j < len(fetched) {
				fv := fetched[j]
				switch {
				case fv.Status == agg.Present:
					raw, src = fv.Value, Fetched
				case fv.Value != nil && fv.Value != "":
					raw, src = fv.Value, Defaulted
				}
			}
		}
		if src == "" {
			var d float64
			d, src = c.Default()
			row[i] = d
			if used != nil {
				used.Sources[c.Name] = src
				if src == Defaulted {
					used.Values[c.Name] = d
				}
			}
			continue
		}
		var x float64
		if f, isNum := raw.(float64); isNum && in.Encoded && src == Supplied {
			x = f
		} else if x, err = c.Encode(raw); err != nil {
			return err
		}
		row[i] = x
		if used != nil {
			used.Values[c.Name] = raw
			used.Sources[c.Name] = src
		}
	}
	return nil
}
