package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
)

// params reads a request's parameters the way MLflow's server does: from the query string
// for GET, from the JSON body otherwise. int64 fields may come as numbers or strings (proto
// JSON), so both are accepted.
type params struct {
	query url.Values
	raw   []byte                     // the JSON body
	body  map[string]json.RawMessage // its fields, decoded on first use
	split bool
}

func readParams(r *http.Request) (*params, error) {
	p := &params{query: r.URL.Query()}
	if r.Method == http.MethodGet {
		return p, nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &mlflowError{Status: http.StatusRequestEntityTooLarge, Code: codeInvalid,
				Message: "request body exceeds " + strconv.FormatInt(tooBig.Limit, 10) + " bytes"}
		}
		return nil, invalid("read request body: %v", err)
	}
	if data = bytes.TrimSpace(data); len(data) > 0 {
		// Checked here so that the lazy decoding below cannot fail.
		if data[0] != '{' || !json.Valid(data) {
			return nil, invalid("request body must be a JSON object")
		}
		p.raw = data
	}
	return p, nil
}

// into decodes the whole body into dst in one pass (for the hot log-batch path).
func (p *params) into(dst any) error {
	if p.raw == nil {
		return nil
	}
	if err := json.Unmarshal(p.raw, dst); err != nil {
		return invalid("request body must be a JSON object of this request's fields: %v", err)
	}
	return nil
}

func (p *params) field(name string) (json.RawMessage, bool) {
	if !p.split {
		p.split = true
		if p.raw != nil {
			_ = json.Unmarshal(p.raw, &p.body) // a valid JSON object: checked by readParams
		}
	}
	if v, ok := p.body[name]; ok && string(v) != "null" {
		return v, true
	}
	return nil, false
}

// str returns a string parameter, "" when absent.
func (p *params) str(name string) (string, error) {
	if v, ok := p.field(name); ok {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", invalid("invalid value %s for parameter '%s' supplied: it must be a string", v, name)
		}
		return s, nil
	}
	return p.query.Get(name), nil
}

// required returns a string parameter that must be present and non-empty.
func (p *params) required(name string) (string, error) {
	s, err := p.str(name)
	if err == nil && s == "" {
		err = invalid("missing value for required parameter '%s'", name)
	}
	return s, err
}

// requiredAll returns several required string parameters, in order.
func (p *params) requiredAll(names ...string) ([]string, error) {
	out := make([]string, len(names))
	for i, name := range names {
		v, err := p.required(name)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// keyValue reads a tag's or param's required key and its value ("" when absent).
func (p *params) keyValue() (key, value string, err error) {
	if key, err = p.required("key"); err != nil {
		return "", "", err
	}
	value, err = p.str("value")
	return key, value, err
}

// int64 returns an integer parameter and whether it was given.
func (p *params) int64(name string) (int64, bool, error) {
	var text string
	if v, ok := p.field(name); ok {
		var n json.Number
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		if err := dec.Decode(&n); err != nil {
			var s string
			if json.Unmarshal(v, &s) != nil {
				return 0, false, invalid("invalid value %s for parameter '%s' supplied: it must be an integer", v, name)
			}
			n = json.Number(s)
		}
		text = n.String()
	} else if q := p.query.Get(name); q != "" {
		text = q
	} else {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, false, invalid("invalid value %s for parameter '%s' supplied: it must be an integer", text, name)
	}
	return n, true, nil
}

// float returns a number parameter (MLflow also accepts "NaN"/"Infinity" strings; JSON
// cannot carry them to a Go client, so they are refused).
func (p *params) float(name string) (float64, bool, error) {
	if v, ok := p.field(name); ok {
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			var s string
			if json.Unmarshal(v, &s) == nil {
				if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
					return f, true, nil
				}
			}
			return 0, false, invalid("invalid value %s for parameter '%s' supplied: it must be a finite number", v, name)
		}
		return f, true, nil
	}
	if q := p.query.Get(name); q != "" {
		f, err := strconv.ParseFloat(q, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, false, invalid("invalid value %s for parameter '%s' supplied: it must be a number", q, name)
		}
		return f, true, nil
	}
	return 0, false, nil
}

// strs returns a repeated string parameter.
func (p *params) strs(name string) ([]string, error) {
	if v, ok := p.field(name); ok {
		var out []string
		if err := json.Unmarshal(v, &out); err != nil {
			return nil, invalid("invalid value %s for parameter '%s' supplied: it must be a list of strings", v, name)
		}
		return out, nil
	}
	return p.query[name], nil
}

// decode decodes a structured parameter (lists of objects) into dst.
func (p *params) decode(name string, dst any) error {
	if v, ok := p.field(name); ok {
		if err := json.Unmarshal(v, dst); err != nil {
			return invalid("invalid value for parameter '%s' supplied: %v", name, err)
		}
	}
	return nil
}

// maxResults reads max_results within [1, limit], def when absent.
func (p *params) maxResults(def, limit int64) (int, error) {
	n, ok, err := p.int64("max_results")
	if err != nil {
		return 0, err
	}
	if !ok {
		return int(def), nil
	}
	if n < 1 || n > limit {
		return 0, invalid("invalid value %d for parameter 'max_results' supplied: it must be between 1 and %d", n, limit)
	}
	return int(n), nil
}
