package v2

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// wantOut is one requested output.
type wantOut struct {
	name   string
	binary int8 // -1 not said, 0 JSON, 1 binary
}

// selOut is one output to send.
type selOut struct {
	t      *OutputTensor
	dt     dtype
	binary bool
}

// errBackendOutput marks an output the backend built wrong (a 500: a bug, not the client's).
var errBackendOutput = errors.New("backend output")

// checkWanted refuses requested outputs the model does not declare (when it declares any), so a
// bad request is answered before inference.
func checkWanted(want []wantOut, md *ModelMetadata) error {
	for i, w := range want {
		for _, v := range want[:i] {
			if v.name == w.name {
				return badRequest("output " + strconv.Quote(w.name) + " is requested twice")
			}
		}
		if len(md.Outputs) > 0 && !slices.ContainsFunc(md.Outputs, func(o TensorMetadata) bool { return o.Name == w.name }) {
			names := make([]string, len(md.Outputs))
			for i, o := range md.Outputs {
				names[i] = o.Name
			}
			return unknownOutput(w.name, names)
		}
	}
	return nil
}

func unknownOutput(name string, known []string) error {
	msg := "unknown output " + strconv.Quote(name) + " (the model's outputs:"
	for _, n := range known {
		msg += " " + strconv.Quote(n)
	}
	return badRequest(msg + ")")
}

// selectOutputs picks the outputs to send: all the backend's in its order, or the requested
// ones in the request's order. Binary is the request's default for those that do not say.
func selectOutputs(dst []selOut, outs []OutputTensor, want []wantOut, hasWant, binary bool) ([]selOut, error) {
	dst = dst[:0]
	if !hasWant {
		for i := range outs {
			dst = append(dst, selOut{t: &outs[i], binary: binary})
		}
	} else {
		for _, w := range want {
			i := slices.IndexFunc(outs, func(o OutputTensor) bool { return o.Name == w.name })
			if i < 0 {
				names := make([]string, len(outs))
				for i, o := range outs {
					names[i] = o.Name
				}
				return nil, unknownOutput(w.name, names)
			}
			b := binary
			if w.binary >= 0 {
				b = w.binary == 1
			}
			dst = append(dst, selOut{t: &outs[i], binary: b})
		}
	}
	for i := range dst {
		if err := checkOutput(&dst[i]); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// checkOutput checks that the backend's tensor is one the front ends can send.
func checkOutput(s *selOut) error {
	t := s.t
	s.dt = parseDtypeString(t.Datatype)
	n, ok := mulDims(t.Shape)
	switch {
	case s.dt == dtInvalid || s.dt == dtBYTES:
		return fmt.Errorf("%w %q: datatype %q is not a numeric V2 datatype", errBackendOutput, t.Name, t.Datatype)
	case !ok:
		return fmt.Errorf("%w %q: shape %v", errBackendOutput, t.Name, t.Shape)
	case s.dt.isFloat():
		if int64(len(t.FP64)) != n {
			return fmt.Errorf("%w %q: shape %v needs %d FP64 values, has %d", errBackendOutput, t.Name, t.Shape, n, len(t.FP64))
		}
	default:
		if int64(len(t.INT64)) != n {
			return fmt.Errorf("%w %q: shape %v needs %d INT64 values, has %d", errBackendOutput, t.Name, t.Shape, n, len(t.INT64))
		}
		lo, hi := s.dt.intRange()
		for _, v := range t.INT64 {
			if v < lo || (v > 0 && uint64(v) > hi) {
				return fmt.Errorf("%w %q: %d does not fit %s", errBackendOutput, t.Name, v, t.Datatype)
			}
		}
	}
	return nil
}

// byteSize is the size of the output's binary data.
func (s *selOut) byteSize() int {
	if s.dt.isFloat() {
		return len(s.t.FP64) * s.dt.size()
	}
	return len(s.t.INT64) * s.dt.size()
}

// appendRaw appends the output's elements, little-endian, row-major.
func (s *selOut) appendRaw(dst []byte) []byte {
	dst = slices.Grow(dst, s.byteSize())
	if s.dt.isFloat() {
		for _, v := range s.t.FP64 {
			dst = appendFloatElem(dst, s.dt, v)
		}
		return dst
	}
	for _, v := range s.t.INT64 {
		dst = appendIntElem(dst, s.dt, v)
	}
	return dst
}

// appendResponseJSON appends the $inference_response object. Outputs sent as binary carry
// parameters.binary_data_size instead of "data"; their bytes follow the JSON in the same order.
func appendResponseJSON(dst []byte, model, version, id string, params map[string]any, sel []selOut) []byte {
	dst = append(dst, `{"model_name":`...)
	dst = appendString(dst, model)
	if version != "" {
		dst = append(dst, `,"model_version":`...)
		dst = appendString(dst, version)
	}
	if id != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, id)
	}
	if len(params) > 0 {
		dst = append(dst, `,"parameters":`...)
		dst = appendParams(dst, params)
	}
	dst = append(dst, `,"outputs":[`...)
	for i := range sel {
		s := &sel[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = appendString(dst, s.t.Name)
		dst = append(dst, `,"datatype":"`...)
		dst = append(dst, s.dt.String()...)
		dst = append(dst, `","shape":[`...)
		for j, d := range s.t.Shape {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, d, 10)
		}
		dst = append(dst, ']')
		if s.binary {
			dst = append(dst, `,"parameters":{"binary_data_size":`...)
			dst = strconv.AppendInt(dst, int64(s.byteSize()), 10)
			dst = append(dst, "}}"...)
			continue
		}
		dst = append(dst, `,"data":[`...)
		if s.dt.isFloat() {
			bits := 64
			if s.dt != dtFP64 {
				bits = 32 // FP32 values print at their own precision (FP16 and BF16 fit float32)
			}
			for j, v := range s.t.FP64 {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendFloat(dst, v, bits)
			}
		} else {
			for j, v := range s.t.INT64 {
				if j > 0 {
					dst = append(dst, ',')
				}
				if s.dt == dtBOOL {
					dst = strconv.AppendBool(dst, v != 0)
				} else {
					dst = strconv.AppendInt(dst, v, 10)
				}
			}
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}"...)
}

// appendFloat writes a number as JSON; NaN and the infinities, which JSON numbers cannot
// hold, are written as the strings "NaN", "Infinity" and "-Infinity" (which requests may use too).
func appendFloat(dst []byte, v float64, bits int) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(dst, `"-Infinity"`...)
	}
	if bits == 32 {
		v = float64(float32(v))
	}
	return strconv.AppendFloat(dst, v, 'g', -1, bits)
}

// appendParams writes a $parameters object, keys sorted.
func appendParams(dst []byte, params map[string]any) []byte {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendValue(dst, params[k])
	}
	return append(dst, '}')
}

func appendValue(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendString(dst, v)
	case bool:
		return strconv.AppendBool(dst, v)
	case int:
		return strconv.AppendInt(dst, int64(v), 10)
	case int32:
		return strconv.AppendInt(dst, int64(v), 10)
	case int64:
		return strconv.AppendInt(dst, v, 10)
	case uint32:
		return strconv.AppendUint(dst, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(dst, v, 10)
	case float32:
		return appendFloat(dst, float64(v), 32)
	case float64:
		return appendFloat(dst, v, 64)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return appendString(dst, fmt.Sprint(v))
	}
	return append(dst, b...)
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
