package v2

import (
	"encoding/binary"
	"math"
)

// dtype is a V2 tensor datatype (the spec's "Tensor Data Types" table, plus BF16 from the gRPC
// proto's comments).
type dtype uint8

const (
	dtInvalid dtype = iota
	dtBOOL
	dtUINT8
	dtUINT16
	dtUINT32
	dtUINT64
	dtINT8
	dtINT16
	dtINT32
	dtINT64
	dtFP16
	dtBF16
	dtFP32
	dtFP64
	dtBYTES
)

var dtypeNames = [...]string{
	dtInvalid: "",
	dtBOOL:    "BOOL",
	dtUINT8:   "UINT8",
	dtUINT16:  "UINT16",
	dtUINT32:  "UINT32",
	dtUINT64:  "UINT64",
	dtINT8:    "INT8",
	dtINT16:   "INT16",
	dtINT32:   "INT32",
	dtINT64:   "INT64",
	dtFP16:    "FP16",
	dtBF16:    "BF16",
	dtFP32:    "FP32",
	dtFP64:    "FP64",
	dtBYTES:   "BYTES",
}

var dtypeSizes = [...]int{
	dtBOOL: 1, dtUINT8: 1, dtUINT16: 2, dtUINT32: 4, dtUINT64: 8,
	dtINT8: 1, dtINT16: 2, dtINT32: 4, dtINT64: 8,
	dtFP16: 2, dtBF16: 2, dtFP32: 4, dtFP64: 8,
}

func (d dtype) String() string { return dtypeNames[d] }

// size is the byte size of one element; 0 for BYTES (variable) and invalid.
func (d dtype) size() int {
	if int(d) < len(dtypeSizes) {
		return dtypeSizes[d]
	}
	return 0
}

func (d dtype) isFloat() bool { return d == dtFP16 || d == dtBF16 || d == dtFP32 || d == dtFP64 }
func (d dtype) isSigned() bool {
	return d == dtINT8 || d == dtINT16 || d == dtINT32 || d == dtINT64
}
func (d dtype) isUnsigned() bool {
	return d == dtUINT8 || d == dtUINT16 || d == dtUINT32 || d == dtUINT64
}

// parseDtype maps a datatype name (case-sensitive, as the spec writes them) to its dtype,
// without allocating.
func parseDtype(b []byte) dtype {
	for d := dtBOOL; d <= dtBYTES; d++ {
		if string(b) == dtypeNames[d] {
			return d
		}
	}
	return dtInvalid
}

func parseDtypeString(s string) dtype {
	for d := dtBOOL; d <= dtBYTES; d++ {
		if s == dtypeNames[d] {
			return d
		}
	}
	return dtInvalid
}

// intRange is the inclusive range of an integer datatype.
func (d dtype) intRange() (lo int64, hi uint64) {
	switch d {
	case dtINT8:
		return math.MinInt8, math.MaxInt8
	case dtINT16:
		return math.MinInt16, math.MaxInt16
	case dtINT32:
		return math.MinInt32, math.MaxInt32
	case dtINT64:
		return math.MinInt64, math.MaxInt64
	case dtUINT8:
		return 0, math.MaxUint8
	case dtUINT16:
		return 0, math.MaxUint16
	case dtUINT32:
		return 0, math.MaxUint32
	case dtUINT64:
		return 0, math.MaxUint64
	case dtBOOL:
		return 0, 1
	}
	return 0, 0
}

// roundFloat rounds v to the precision of a floating datatype; it reports false when a finite
// v does not fit (it would become infinite).
func roundFloat(d dtype, v float64) (float64, bool) {
	var r float64
	switch d {
	case dtFP32:
		r = float64(float32(v))
	case dtFP16:
		r = halfToFloat(floatToHalf(v))
	case dtBF16:
		r = float64(math.Float32frombits(uint32(floatToBF16(v)) << 16))
	default:
		return v, true
	}
	if math.IsInf(r, 0) && !math.IsInf(v, 0) {
		return r, false
	}
	return r, true
}

// readElem reads one little-endian element of a fixed-size numeric datatype from b
// (len(b) >= d.size()) as a float64. BOOL is any non-zero byte.
func readElem(d dtype, b []byte) float64 {
	switch d {
	case dtBOOL:
		if b[0] != 0 {
			return 1
		}
		return 0
	case dtUINT8:
		return float64(b[0])
	case dtUINT16:
		return float64(binary.LittleEndian.Uint16(b))
	case dtUINT32:
		return float64(binary.LittleEndian.Uint32(b))
	case dtUINT64:
		return float64(binary.LittleEndian.Uint64(b))
	case dtINT8:
		return float64(int8(b[0]))
	case dtINT16:
		return float64(int16(binary.LittleEndian.Uint16(b)))
	case dtINT32:
		return float64(int32(binary.LittleEndian.Uint32(b)))
	case dtINT64:
		return float64(int64(binary.LittleEndian.Uint64(b)))
	case dtFP16:
		return halfToFloat(binary.LittleEndian.Uint16(b))
	case dtBF16:
		return float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16))
	case dtFP32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	case dtFP64:
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	return math.NaN()
}

// appendFloatElem appends v as one little-endian element of a floating datatype.
func appendFloatElem(dst []byte, d dtype, v float64) []byte {
	switch d {
	case dtFP16:
		return binary.LittleEndian.AppendUint16(dst, floatToHalf(v))
	case dtBF16:
		return binary.LittleEndian.AppendUint16(dst, floatToBF16(v))
	case dtFP32:
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(v)))
	default:
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	}
}

// appendIntElem appends v as one little-endian element of an integer or BOOL datatype
// (truncated to its width; callers check the range first).
func appendIntElem(dst []byte, d dtype, v int64) []byte {
	switch d.size() {
	case 1:
		return append(dst, byte(v))
	case 2:
		return binary.LittleEndian.AppendUint16(dst, uint16(v))
	case 4:
		return binary.LittleEndian.AppendUint32(dst, uint32(v))
	default:
		return binary.LittleEndian.AppendUint64(dst, uint64(v))
	}
}

// halfToFloat converts an IEEE 754 binary16 value.
func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0: // zero or subnormal
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+frac/1024, exp-15)
}

// floatToHalf converts to IEEE 754 binary16, rounding to nearest even.
func floatToHalf(v float64) uint16 {
	var sign uint16
	if math.Signbit(v) {
		sign = 0x8000
		v = -v
	}
	switch {
	case math.IsNaN(v):
		return 0x7e00
	case v >= 65520: // rounds past the largest half, 65504
		return sign | 0x7c00
	case v < math.Ldexp(1, -25): // rounds to zero (ties to even)
		return sign
	}
	frac, exp := math.Frexp(v) // v = frac × 2^exp, frac in [0.5, 1)
	e := exp - 1 + 15          // biased exponent of 1.f × 2^(exp-1)
	if e <= 0 {                // subnormal: value / 2^-24 units
		m := math.RoundToEven(math.Ldexp(v, 24))
		return sign | uint16(m)
	}
	m := math.RoundToEven((frac*2 - 1) * 1024)
	if m == 1024 { // rounded up into the next binade
		m = 0
		e++
	}
	if e >= 0x1f {
		return sign | 0x7c00
	}
	return sign | uint16(e)<<10 | uint16(m)
}

// floatToBF16 converts to bfloat16 (the top half of a float32), rounding to nearest even.
func floatToBF16(v float64) uint16 {
	bits := math.Float32bits(float32(v))
	if math.IsNaN(v) {
		return uint16(bits>>16) | 0x40
	}
	bits += 0x7fff + (bits>>16)&1
	return uint16(bits >> 16)
}
