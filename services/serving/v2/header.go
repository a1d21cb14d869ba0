package v2

import (
	"math"
	"strconv"
)

// maxRank bounds the shape of an input as read from JSON; the front ends take rank 1 and 2.
const maxRank = 8

// inputHeader is one $request_input of a REST request, as read from the JSON header.
type inputHeader struct {
	name     []byte
	datatype []byte
	dt       dtype
	shape    [maxRank]int64
	rank     int
	hasShape bool

	data    []byte // the raw JSON of "data"
	hasData bool
	stats   dataStats

	binSize int64 // parameters.binary_data_size
	hasBin  bool
}

// outputHeader is one $request_output.
type outputHeader struct {
	name   []byte
	binary int8 // -1 not said, 0 JSON, 1 binary
}

// header is the JSON object of a REST inference request.
type header struct {
	id           []byte
	hasID        bool
	params       map[string]any
	binaryOutput bool // parameters.binary_data_output
	inputs       []inputHeader
	outputs      []outputHeader
	hasOutputs   bool
}

func (h *header) reset() {
	h.id, h.hasID, h.params, h.binaryOutput = nil, false, nil, false
	h.inputs = h.inputs[:0]
	h.outputs = h.outputs[:0]
	h.hasOutputs = false
}

// parseHeader reads the $inference_request object that is all of b. Members it does not know
// are validated and ignored.
func parseHeader(b []byte, h *header) error {
	s := &scanner{b: b}
	if err := s.open('{', "an inference request object"); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := s.member(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "id":
			if s.peek() != '"' {
				return badRequest(`"id" must be a string`)
			}
			if h.id, err = s.str(); err != nil {
				return err
			}
			h.hasID = true
		case "parameters":
			if err := parseRequestParams(s, h); err != nil {
				return err
			}
		case "inputs":
			if err := s.open('[', `an array of inputs`); err != nil {
				return err
			}
			for first := true; ; first = false {
				ok, err := s.element(first)
				if err != nil {
					return err
				}
				if !ok {
					break
				}
				h.inputs = append(h.inputs, inputHeader{})
				if err := parseInput(s, &h.inputs[len(h.inputs)-1], len(h.inputs)-1); err != nil {
					return err
				}
			}
		case "outputs":
			h.hasOutputs = true
			if err := s.open('[', `an array of outputs`); err != nil {
				return err
			}
			for first := true; ; first = false {
				ok, err := s.element(first)
				if err != nil {
					return err
				}
				if !ok {
					break
				}
				h.outputs = append(h.outputs, outputHeader{binary: -1})
				if err := parseOutput(s, &h.outputs[len(h.outputs)-1], len(h.outputs)-1); err != nil {
					return err
				}
			}
		default:
			if err := s.skip(1); err != nil {
				return err
			}
		}
	}
	if s.peek() != 0 {
		return s.fail("data after the request object")
	}
	return nil
}

func parseRequestParams(s *scanner, h *header) error {
	if err := s.open('{', "a parameters object"); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := s.member(first)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if string(key) == "binary_data_output" {
			v, err := boolParam(s, "binary_data_output")
			if err != nil {
				return err
			}
			h.binaryOutput = v
			continue
		}
		v, err := paramValue(s, key)
		if err != nil {
			return err
		}
		if v == nil {
			continue
		}
		if h.params == nil {
			h.params = make(map[string]any, 4)
		}
		h.params[string(key)] = v
	}
}

// paramValue reads a $parameter value: a string, a number (int64 when it is an integer that
// fits, else float64) or a boolean; null gives nil (the parameter is left out).
func paramValue(s *scanner, key []byte) (any, error) {
	switch s.peek() {
	case '"':
		v, err := s.str()
		return string(v), err
	case 't':
		return true, s.word("true")
	case 'f':
		return false, s.word("false")
	case 'n':
		return nil, s.word("null")
	case '{', '[':
		return nil, badRequest("parameter " + strconv.Quote(string(key)) + ": a parameter is a string, number or boolean")
	}
	tok, err := s.num()
	if err != nil {
		return nil, err
	}
	if n, err := strconv.ParseInt(string(tok), 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil {
		return nil, badRequest("parameter " + strconv.Quote(string(key)) + ": " + string(tok) + " is out of range")
	}
	return f, nil
}

func boolParam(s *scanner, name string) (bool, error) {
	switch {
	case s.peek() == 't' && s.lit("true"):
		return true, nil
	case s.peek() == 'f' && s.lit("false"):
		return false, nil
	}
	return false, badRequest("parameter " + strconv.Quote(name) + " must be true or false")
}

func parseInput(s *scanner, in *inputHeader, idx int) error {
	if err := s.open('{', "an input object"); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := s.member(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "name":
			if s.peek() != '"' {
				return badRequest("input " + strconv.Itoa(idx) + `: "name" must be a string`)
			}
			if in.name, err = s.str(); err != nil {
				return err
			}
		case "datatype":
			if s.peek() != '"' {
				return badRequest(inputLabel(in, idx) + `: "datatype" must be a string`)
			}
			if in.datatype, err = s.str(); err != nil {
				return err
			}
			in.dt = parseDtype(in.datatype)
		case "shape":
			if err := parseShape(s, in, idx); err != nil {
				return err
			}
		case "parameters":
			if err := parseInputParams(s, in, idx); err != nil {
				return err
			}
		case "data":
			start := s.i
			in.stats = dataStats{}
			if err := s.countData(0, &in.stats); err != nil {
				return err
			}
			in.data, in.hasData = s.b[start:s.i], true
		default:
			if err := s.skip(1); err != nil {
				return err
			}
		}
	}
	switch {
	case in.name == nil:
		return badRequest("input " + strconv.Itoa(idx) + `: no "name"`)
	case in.datatype == nil:
		return badRequest(inputLabel(in, idx) + `: no "datatype"`)
	case in.dt == dtInvalid:
		return badRequest(inputLabel(in, idx) + ": datatype " + strconv.Quote(string(in.datatype)) +
			" is not a V2 datatype (BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES)")
	case !in.hasShape:
		return badRequest(inputLabel(in, idx) + `: no "shape"`)
	case in.hasData && in.hasBin:
		return badRequest(inputLabel(in, idx) + `: both "data" and parameters.binary_data_size`)
	case !in.hasData && !in.hasBin:
		return badRequest(inputLabel(in, idx) + `: no "data" (nor parameters.binary_data_size)`)
	}
	return nil
}

func inputLabel(in *inputHeader, idx int) string {
	if in.name == nil {
		return "input " + strconv.Itoa(idx)
	}
	return "input " + strconv.Quote(string(in.name))
}

func parseShape(s *scanner, in *inputHeader, idx int) error {
	if err := s.open('[', "a shape array"); err != nil {
		return err
	}
	in.rank, in.hasShape = 0, true
	for first := true; ; first = false {
		ok, err := s.element(first)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if s.peek() == '-' || s.peek() < '0' || s.peek() > '9' {
			return badRequest(inputLabel(in, idx) + ": a shape holds dimensions ≥ 0")
		}
		tok, err := s.num()
		if err != nil {
			return err
		}
		d, err := strconv.ParseInt(string(tok), 10, 64)
		if err != nil {
			return badRequest(inputLabel(in, idx) + ": shape dimension " + string(tok) + " is not an integer ≥ 0 that fits in int64")
		}
		if in.rank == maxRank {
			return badRequest(inputLabel(in, idx) + ": shape has more than " + strconv.Itoa(maxRank) + " dimensions")
		}
		in.shape[in.rank] = d
		in.rank++
	}
}

func parseInputParams(s *scanner, in *inputHeader, idx int) error {
	if err := s.open('{', "a parameters object"); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := s.member(first)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		switch string(key) {
		case "binary_data_size":
			c := s.peek()
			if c < '0' || c > '9' {
				return badRequest(inputLabel(in, idx) + ": binary_data_size must be an integer ≥ 0")
			}
			tok, err := s.num()
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(string(tok), 10, 64)
			if err != nil {
				return badRequest(inputLabel(in, idx) + ": binary_data_size " + string(tok) + " is not an integer ≥ 0 that fits in int64")
			}
			in.binSize, in.hasBin = n, true
		case "shared_memory_region", "shared_memory_byte_size", "shared_memory_offset":
			return badRequest(inputLabel(in, idx) + ": the shared memory extension is not supported")
		default:
			if err := s.skip(1); err != nil {
				return err
			}
		}
	}
}

func parseOutput(s *scanner, out *outputHeader, idx int) error {
	if err := s.open('{', "an output object"); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := s.member(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "name":
			if s.peek() != '"' {
				return badRequest("output " + strconv.Itoa(idx) + `: "name" must be a string`)
			}
			if out.name, err = s.str(); err != nil {
				return err
			}
		case "parameters":
			if err := s.open('{', "a parameters object"); err != nil {
				return err
			}
			for first := true; ; first = false {
				key, ok, err := s.member(first)
				if err != nil {
					return err
				}
				if !ok {
					break
				}
				switch string(key) {
				case "binary_data", "binary_data_output":
					v, err := boolParam(s, string(key))
					if err != nil {
						return err
					}
					out.binary = 0
					if v {
						out.binary = 1
					}
				case "classification":
					return badRequest("output " + strconv.Itoa(idx) + ": the classification extension is not supported")
				case "shared_memory_region", "shared_memory_byte_size", "shared_memory_offset":
					return badRequest("output " + strconv.Itoa(idx) + ": the shared memory extension is not supported")
				default:
					if err := s.skip(1); err != nil {
						return err
					}
				}
			}
		default:
			if err := s.skip(1); err != nil {
				return err
			}
		}
	}
	if out.name == nil {
		return badRequest("output " + strconv.Itoa(idx) + `: no "name"`)
	}
	return nil
}

func badRequest(msg string) *Error { return &Error{Status: 400, Msg: msg} }

// mulDims multiplies dimensions, reporting false on overflow past MaxInt64.
func mulDims(dims []int64) (int64, bool) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}
