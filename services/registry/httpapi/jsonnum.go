package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// jsonInt64 accepts an int64 as a JSON number or string, as proto JSON allows.
type jsonInt64 int64

func (n *jsonInt64) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if len(b) == 0 || string(b) == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not an integer", b)
	}
	*n = jsonInt64(v)
	return nil
}

// jsonFloat accepts a number, or a number in a string.
type jsonFloat float64

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	var v float64
	if err := json.Unmarshal(b, &v); err == nil {
		*f = jsonFloat(v)
		return nil
	}
	s, err := strconv.Unquote(string(b))
	if err == nil {
		if v, err = strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			*f = jsonFloat(v)
			return nil
		}
	}
	return fmt.Errorf("%s is not a finite number (NaN and infinities cannot be stored)", b)
}
