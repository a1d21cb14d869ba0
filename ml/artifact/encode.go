package artifact

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Encoder turns a raw input value — a number, a string, a boolean, as a request or the
// feature store gives it — into what the model reads for one signature feature: the number
// itself, or a categorical code (NaN for a category the model never saw). Serving encodes
// requests with it and the monitor encodes logged values with it, so both agree with the
// training data the reference profile describes.
type Encoder struct {
	name        string
	categorical bool
	codes       map[string]float64 // vocabulary → code; nil: the value is the code itself
}

// Encoder compiles f's encoding.
func (f Feature) Encoder() *Encoder {
	e := &Encoder{name: f.Name, categorical: f.Kind == "categorical"}
	if len(f.Vocabulary) > 0 {
		e.codes = make(map[string]float64, len(f.Vocabulary))
		for code, v := range f.Vocabulary {
			e.codes[v] = float64(code)
		}
	}
	return e
}

// Encode encodes v; nil is missing (NaN).
func (e *Encoder) Encode(v any) (float64, error) {
	if f, ok := asFloat(v); ok {
		v = f
	}
	switch x := v.(type) {
	case nil:
		return math.NaN(), nil
	case float64:
		if e.categorical && e.codes != nil {
			return e.code(strconv.FormatFloat(x, 'f', -1, 64)), nil
		}
		return x, nil
	case string:
		if !e.categorical {
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return 0, fmt.Errorf("%s is numeric; %q is not a number", e.name, x)
			}
			return f, nil
		}
		if e.codes == nil {
			f, err := strconv.ParseFloat(x, 64)
			if err != nil || f < 0 || f != math.Trunc(f) {
				return 0, fmt.Errorf("%s is a categorical code; %q is not a non-negative integer", e.name, x)
			}
			return f, nil
		}
		return e.code(x), nil
	case bool:
		if e.categorical && e.codes != nil {
			return e.code(strconv.FormatBool(x)), nil
		}
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%s: a %T is not a number, string or boolean", e.name, v)
}

func (e *Encoder) code(s string) float64 {
	if code, ok := e.codes[s]; ok {
		return code
	}
	return math.NaN()
}

// asFloat converts the numeric types a default declared in YAML or a decoded value may have.
func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}
