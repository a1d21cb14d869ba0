package v2

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/flywheel-ml/flywheel/services/serving/v2/pb"
)

// srcKind says where a tensor's elements are.
type srcKind uint8

const (
	srcJSON  srcKind = iota // REST "data"
	srcRaw                  // REST binary extension or gRPC raw_input_contents
	srcTyped                // gRPC InferTensorContents
)

// tensor is one input tensor of either front end, before it is turned into columns.
type tensor struct {
	name  string
	dt    dtype
	shape []int64
	src   srcKind
	json  []byte    // srcJSON: the raw "data" value
	stats dataStats // srcJSON: from countData
	raw   []byte    // srcRaw
	typed *pb.InferTensorContents

	// set by plan
	rows, width int
	matrix      bool
	n           int // elements
	strBytes    int // BYTES: bytes of the values (an upper bound for JSON)
}

// scratch is per-request working memory that is reused across requests (pooled); nothing in it
// is handed to the backend.
type scratch struct {
	tensors []tensor
	arena   []byte // BYTES values, copied once into one string at the end
	offs    []int  // per BYTES element: end offset in arena
}

func (t *tensor) label() string { return "input " + strconv.Quote(t.name) }

func (t *tensor) shapeString() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range t.shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// plan checks a tensor's shape against the model's matrix and against what its source holds,
// before anything is allocated from its counts: every count it accepts is backed by bytes that
// were received.
func (t *tensor) plan(matrix []string) error {
	if len(t.shape) != 1 && len(t.shape) != 2 {
		return t.shapeErr(matrix)
	}
	t.rows, t.width = 0, 1
	if t.shape[0] < 0 {
		return badRequest(t.label() + ": shape " + t.shapeString() + " has a negative dimension")
	}
	if len(t.shape) == 2 {
		w := t.shape[1]
		switch {
		case w < 0:
			return badRequest(t.label() + ": shape " + t.shapeString() + " has a negative dimension")
		case w == 1:
		case len(matrix) > 1 && w == int64(len(matrix)):
			t.matrix = true
			t.width = len(matrix)
		default:
			return t.shapeErr(matrix)
		}
	}
	// The element count must match what the source holds; compare without multiplying
	// untrusted dimensions past what was received.
	n64, ok := mulDims(t.shape)
	var have int64
	switch t.src {
	case srcJSON:
		if t.dt == dtFP16 || t.dt == dtBF16 {
			return badRequest(t.label() + ": " + t.dt.String() + " cannot be sent as JSON numbers; send it as binary data or use FP32")
		}
		have = int64(t.stats.leaves)
		t.strBytes = t.stats.strBytes
		if !ok || n64 != have {
			return badRequest(t.label() + ": shape " + t.shapeString() + " needs " + countString(n64, ok) + " values, got " + strconv.FormatInt(have, 10))
		}
	case srcRaw:
		if t.dt == dtBYTES {
			n, sb, err := countBytesElems(t.raw)
			if err != nil {
				return badRequest(t.label() + ": " + err.Error())
			}
			if !ok || n64 != n {
				return badRequest(t.label() + ": shape " + t.shapeString() + " needs " + countString(n64, ok) + " values, got " + strconv.FormatInt(n, 10))
			}
			t.strBytes = sb
			break
		}
		size := int64(t.dt.size())
		have = int64(len(t.raw))
		if !ok || n64 > have/size || n64*size != have {
			need := "more than " + strconv.FormatInt(have, 10)
			if ok && n64 <= math.MaxInt64/size {
				need = strconv.FormatInt(n64*size, 10)
			}
			return badRequest(t.label() + ": shape " + t.shapeString() + " of " + t.dt.String() + " needs " + need + " bytes, got " + strconv.FormatInt(have, 10))
		}
	case srcTyped:
		field, count, err := typedCount(t.dt, t.typed)
		if err != nil {
			return badRequest(t.label() + ": " + err.Error())
		}
		if !ok || n64 != int64(count) {
			return badRequest(t.label() + ": shape " + t.shapeString() + " needs " + countString(n64, ok) + " values, got " + strconv.Itoa(count) + " in " + field)
		}
		if t.dt == dtBYTES {
			for _, v := range t.typed.GetBytesContents() {
				t.strBytes += len(v)
			}
		}
	}
	t.n = int(n64)
	t.rows = int(t.shape[0])
	return nil
}

func countString(n int64, ok bool) string {
	if !ok {
		return "more than 2^63"
	}
	return strconv.FormatInt(n, 10)
}

func (t *tensor) shapeErr(matrix []string) error {
	msg := t.label() + ": shape " + t.shapeString() + ": an input is [N] or [N,1] (one column)"
	if len(matrix) > 1 {
		msg += " or [N," + strconv.Itoa(len(matrix)) + "] (the model's " + strconv.Itoa(len(matrix)) + " matrix columns)"
	}
	return badRequest(msg)
}

// countBytesElems counts the 4-byte-length-prefixed strings of raw BYTES data; it fails when a
// length runs past the data.
func countBytesElems(raw []byte) (n int64, strBytes int, err error) {
	for len(raw) > 0 {
		if len(raw) < 4 {
			return n, 0, &Error{Status: 400, Msg: "BYTES element " + strconv.FormatInt(n, 10) + ": " + strconv.Itoa(len(raw)) + " bytes left, a length prefix needs 4"}
		}
		l := binary.LittleEndian.Uint32(raw)
		if uint64(l) > uint64(len(raw)-4) {
			return n, 0, &Error{Status: 400, Msg: "BYTES element " + strconv.FormatInt(n, 10) + " declares " + strconv.FormatUint(uint64(l), 10) + " bytes, " + strconv.Itoa(len(raw)-4) + " left"}
		}
		raw = raw[4+l:]
		strBytes += int(l)
		n++
	}
	return n, strBytes, nil
}

// typedCount returns the InferTensorContents field that carries dt and its length, refusing
// contents in any other field.
func typedCount(dt dtype, c *pb.InferTensorContents) (string, int, error) {
	var field string
	var count int
	switch dt {
	case dtBOOL:
		field, count = "bool_contents", len(c.GetBoolContents())
	case dtINT8, dtINT16, dtINT32:
		field, count = "int_contents", len(c.GetIntContents())
	case dtINT64:
		field, count = "int64_contents", len(c.GetInt64Contents())
	case dtUINT8, dtUINT16, dtUINT32:
		field, count = "uint_contents", len(c.GetUintContents())
	case dtUINT64:
		field, count = "uint64_contents", len(c.GetUint64Contents())
	case dtFP32:
		field, count = "fp32_contents", len(c.GetFp32Contents())
	case dtFP64:
		field, count = "fp64_contents", len(c.GetFp64Contents())
	case dtBYTES:
		field, count = "bytes_contents", len(c.GetBytesContents())
	default:
		return "", 0, &Error{Status: 400, Msg: dt.String() + " has no typed contents field; send it in raw_input_contents"}
	}
	others := []struct {
		name string
		n    int
	}{
		{"bool_contents", len(c.GetBoolContents())}, {"int_contents", len(c.GetIntContents())},
		{"int64_contents", len(c.GetInt64Contents())}, {"uint_contents", len(c.GetUintContents())},
		{"uint64_contents", len(c.GetUint64Contents())}, {"fp32_contents", len(c.GetFp32Contents())},
		{"fp64_contents", len(c.GetFp64Contents())}, {"bytes_contents", len(c.GetBytesContents())},
	}
	for _, o := range others {
		if o.n > 0 && o.name != field {
			return "", 0, &Error{Status: 400, Msg: "datatype " + dt.String() + " takes " + field + ", got " + o.name}
		}
	}
	return field, count, nil
}

// assemble turns planned-and-checked tensors into the request's columns: one allocation for all
// numbers, one for all strings (and their bytes), one for the columns.
func assemble(ts []tensor, md *ModelMetadata, sc *scratch, req *Request) error {
	if len(ts) == 0 {
		return badRequest("the request has no inputs")
	}
	var nums, strs, ncols int
	rows := -1
	var rowsFrom *tensor
	matrixSeen := -1
	for i := range ts {
		t := &ts[i]
		if err := t.plan(md.Matrix); err != nil {
			return err
		}
		if t.matrix {
			if matrixSeen >= 0 {
				return badRequest(t.label() + ": only one 2-D matrix input is taken, " + ts[matrixSeen].label() + " is one too")
			}
			matrixSeen = i
		}
		switch {
		case rows < 0:
			rows, rowsFrom = t.rows, t
		case t.rows != rows:
			return badRequest(t.label() + " has " + strconv.Itoa(t.rows) + " rows, " + rowsFrom.label() + " has " + strconv.Itoa(rows))
		}
		if t.dt == dtBYTES {
			strs += t.n
		} else {
			nums += t.n
		}
		ncols += t.width
	}
	if rows == 0 {
		return badRequest(rowsFrom.label() + ": shape " + rowsFrom.shapeString() + " has no rows")
	}

	numbers := make([]float64, nums)
	var strVals []string
	if strs > 0 {
		strVals = make([]string, strs)
		sc.offs = sc.offs[:0]
		sc.arena = sc.arena[:0]
	}
	cols := make([]Column, 0, ncols)
	strBase := 0
	for i := range ts {
		t := &ts[i]
		dtName := t.dt.String()
		if t.dt == dtBYTES {
			dst := strVals[strBase : strBase+t.n]
			for j := 0; j < t.width; j++ {
				cols = append(cols, Column{Name: t.colName(md, j), Datatype: dtName, Strings: dst[j*rows : (j+1)*rows : (j+1)*rows]})
			}
			if err := t.fillStrings(sc); err != nil {
				return err
			}
			strBase += t.n
			continue
		}
		dst := numbers[:t.n:t.n]
		numbers = numbers[t.n:]
		for j := 0; j < t.width; j++ {
			cols = append(cols, Column{Name: t.colName(md, j), Datatype: dtName, Numbers: dst[j*rows : (j+1)*rows : (j+1)*rows]})
		}
		if err := t.fillNumbers(dst); err != nil {
			return err
		}
	}
	if strs > 0 {
		// One string for every BYTES value; each value is a substring of it, in the same
		// transposed order as the numbers.
		all := string(sc.arena)
		k, start, base := 0, 0, 0
		for i := range ts {
			t := &ts[i]
			if t.dt != dtBYTES {
				continue
			}
			p := placer{rows: rows, width: t.width}
			for e := 0; e < t.n; e++ {
				end := sc.offs[k]
				strVals[base+p.pos()] = all[start:end]
				p.advance()
				start = end
				k++
			}
			base += t.n
		}
	}
	if err := checkUnique(cols); err != nil {
		return err
	}
	req.Rows = rows
	req.Columns = cols
	return nil
}

// colName is the name of the tensor's column j: its own name, or the matrix's column.
func (t *tensor) colName(md *ModelMetadata, j int) string {
	if t.matrix {
		return md.Matrix[j]
	}
	return t.name
}

func checkUnique(cols []Column) error {
	if len(cols) <= 16 {
		for i := range cols {
			for j := 0; j < i; j++ {
				if cols[i].Name == cols[j].Name {
					return badRequest("column " + strconv.Quote(cols[i].Name) + " is given twice")
				}
			}
		}
		return nil
	}
	seen := make(map[string]struct{}, len(cols))
	for _, c := range cols {
		if _, dup := seen[c.Name]; dup {
			return badRequest("column " + strconv.Quote(c.Name) + " is given twice")
		}
		seen[c.Name] = struct{}{}
	}
	return nil
}

// placer maps the k-th row-major element of an [rows, width] tensor to its place in the
// column-major destination (column j, row i at j*rows+i).
type placer struct {
	rows, width int
	i, j        int
}

func (p *placer) pos() int { return p.j*p.rows + p.i }

func (p *placer) advance() {
	p.j++
	if p.j == p.width {
		p.j = 0
		p.i++
	}
}

func (t *tensor) fillNumbers(dst []float64) error {
	p := placer{rows: t.rows, width: t.width}
	switch t.src {
	case srcRaw:
		size := t.dt.size()
		for k := 0; k < t.n; k++ {
			dst[p.pos()] = readElem(t.dt, t.raw[k*size:])
			p.advance()
		}
		return nil
	case srcTyped:
		return t.fillTyped(dst, &p)
	}
	d := dataScanner{b: t.json}
	for k := 0; k < t.n; k++ {
		kind, tok, _, _ := d.next()
		v, err := t.jsonNumber(kind, tok, k)
		if err != nil {
			return err
		}
		dst[p.pos()] = v
		p.advance()
	}
	return nil
}

// jsonNumber converts one JSON scalar of element k to the tensor's numeric datatype.
func (t *tensor) jsonNumber(kind leafKind, tok []byte, k int) (float64, error) {
	dt := t.dt
	switch kind {
	case leafNumber:
		switch {
		case dt.isFloat():
			v, err := strconv.ParseFloat(string(tok), 64)
			if err != nil { // out of float64's range
				return 0, t.elemErr(k, string(tok)+" is out of range")
			}
			v, ok := roundFloat(dt, v)
			if !ok {
				return 0, t.elemErr(k, string(tok)+" is out of range")
			}
			return v, nil
		case dt.isSigned():
			n, err := strconv.ParseInt(string(tok), 10, 64)
			lo, hi := dt.intRange()
			if err != nil || n < lo || n > int64(hi) {
				return 0, t.elemErr(k, string(tok)+notInt(tok))
			}
			return float64(n), nil
		case dt.isUnsigned():
			n, err := strconv.ParseUint(string(tok), 10, 64)
			_, hi := dt.intRange()
			if err != nil || n > hi {
				return 0, t.elemErr(k, string(tok)+notInt(tok))
			}
			return float64(n), nil
		}
		return 0, t.elemErr(k, string(tok)+" is a number, want true or false")
	case leafTrue, leafFalse:
		if dt == dtBOOL {
			if kind == leafTrue {
				return 1, nil
			}
			return 0, nil
		}
		return 0, t.elemErr(k, "a boolean is not a number")
	case leafNull:
		if dt.isFloat() {
			return math.NaN(), nil
		}
	case leafNaN:
		if dt.isFloat() {
			return math.NaN(), nil
		}
	case leafPosInf:
		if dt.isFloat() {
			return math.Inf(1), nil
		}
	case leafNegInf:
		if dt.isFloat() {
			return math.Inf(-1), nil
		}
	case leafString:
		if dt.isFloat() {
			switch string(tok) {
			case "NaN", "nan":
				return math.NaN(), nil
			case "Infinity", "Inf", "inf", "+Infinity", "+Inf", "+inf":
				return math.Inf(1), nil
			case "-Infinity", "-Inf", "-inf":
				return math.Inf(-1), nil
			}
		}
		return 0, t.elemErr(k, "the string "+quoteShort(tok)+" is not a number")
	}
	switch kind {
	case leafNull:
		return 0, t.elemErr(k, "null is a missing value, which only FP16, FP32 and FP64 hold (as NaN)")
	default:
		return 0, t.elemErr(k, "NaN and Infinity are only FP16, FP32 or FP64 values")
	}
}

func notInt(tok []byte) string {
	for _, c := range tok {
		if c == '.' || c == 'e' || c == 'E' {
			return " is not an integer"
		}
	}
	return " is out of range"
}

func (t *tensor) elemErr(k int, msg string) error {
	return badRequest(t.label() + " (" + t.dt.String() + "): data[" + strconv.Itoa(k) + "]: " + msg)
}

func quoteShort(b []byte) string {
	if len(b) > 40 {
		return strconv.Quote(string(b[:40]) + "…")
	}
	return strconv.Quote(string(b))
}

// fillStrings appends the tensor's BYTES values to the arena, recording where each ends.
func (t *tensor) fillStrings(sc *scratch) error {
	switch t.src {
	case srcRaw:
		raw := t.raw
		for k := 0; k < t.n; k++ {
			l := binary.LittleEndian.Uint32(raw)
			sc.arena = append(sc.arena, raw[4:4+l]...)
			sc.offs = append(sc.offs, len(sc.arena))
			raw = raw[4+l:]
		}
		return nil
	case srcTyped:
		for _, v := range t.typed.GetBytesContents() {
			sc.arena = append(sc.arena, v...)
			sc.offs = append(sc.offs, len(sc.arena))
		}
		return nil
	}
	d := dataScanner{b: t.json}
	for k := 0; k < t.n; k++ {
		kind, tok, esc, _ := d.next()
		if kind != leafString {
			return t.elemErr(k, "want a string")
		}
		if esc {
			sc.arena = unescape(sc.arena, tok)
		} else {
			sc.arena = append(sc.arena, tok...)
		}
		sc.offs = append(sc.offs, len(sc.arena))
	}
	return nil
}

// fillTyped converts gRPC typed contents, checking integer ranges.
func (t *tensor) fillTyped(dst []float64, p *placer) error {
	c := t.typed
	put := func(v float64) {
		dst[p.pos()] = v
		p.advance()
	}
	lo, hi := t.dt.intRange()
	switch t.dt {
	case dtBOOL:
		for _, v := range c.GetBoolContents() {
			if v {
				put(1)
			} else {
				put(0)
			}
		}
	case dtINT8, dtINT16, dtINT32:
		for k, v := range c.GetIntContents() {
			if int64(v) < lo || int64(v) > int64(hi) {
				return t.elemErr(k, strconv.Itoa(int(v))+" is out of range")
			}
			put(float64(v))
		}
	case dtINT64:
		for _, v := range c.GetInt64Contents() {
			put(float64(v))
		}
	case dtUINT8, dtUINT16, dtUINT32:
		for k, v := range c.GetUintContents() {
			if uint64(v) > hi {
				return t.elemErr(k, strconv.FormatUint(uint64(v), 10)+" is out of range")
			}
			put(float64(v))
		}
	case dtUINT64:
		for _, v := range c.GetUint64Contents() {
			put(float64(v))
		}
	case dtFP32:
		for _, v := range c.GetFp32Contents() {
			put(float64(v))
		}
	case dtFP64:
		for _, v := range c.GetFp64Contents() {
			put(v)
		}
	}
	return nil
}
