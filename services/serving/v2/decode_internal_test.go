package v2

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// benchMeta is a model of 15 inputs: 10 numeric (also its matrix) and 5 BYTES.
var benchMeta = func() ModelMetadata {
	md := ModelMetadata{Name: "bench", Outputs: []TensorMetadata{{Name: "score", Datatype: "FP64", Shape: []int64{-1, 1}}}}
	for i := range 10 {
		name := fmt.Sprintf("card_activity:feature_%02d", i)
		md.Inputs = append(md.Inputs, TensorMetadata{Name: name, Datatype: "FP64", Shape: []int64{-1}})
		md.Matrix = append(md.Matrix, name)
	}
	for i := range 5 {
		md.Inputs = append(md.Inputs, TensorMetadata{Name: fmt.Sprintf("category_%d", i), Datatype: "BYTES", Shape: []int64{-1}})
	}
	return md
}()

// columnsBody is a V2 JSON request with one tensor per input of benchMeta, rows rows each.
func columnsBody(rows int) []byte {
	var b strings.Builder
	b.WriteString(`{"id":"r-1","inputs":[`)
	for i, in := range benchMeta.Inputs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":%q,"shape":[%d],"datatype":%q,"data":[`, in.Name, rows, in.Datatype)
		for r := range rows {
			if r > 0 {
				b.WriteByte(',')
			}
			if in.Datatype == "BYTES" {
				fmt.Fprintf(&b, `"value-%d"`, r%7)
			} else {
				b.WriteString(strconv.FormatFloat(float64(r*31+i)*1.25, 'g', -1, 64))
			}
		}
		b.WriteString("]}")
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func decodeOnce(tb testing.TB, body []byte, headerLen int64) *Request {
	st := getState()
	defer st.release()
	req := &Request{}
	if err := st.decodeREST(body, headerLen, &benchMeta, req); err != nil {
		tb.Fatal(err)
	}
	return req
}

func TestDecodeColumnsBody(t *testing.T) {
	req := decodeOnce(t, columnsBody(3), -1)
	if req.ID != "r-1" || req.Rows != 3 || len(req.Columns) != 15 {
		t.Fatalf("request %+v", req)
	}
	if c := req.Columns[4]; c.Numbers[2] != float64(2*31+4)*1.25 {
		t.Errorf("column %+v", c)
	}
	if c := req.Columns[14]; c.Strings[1] != "value-1" {
		t.Errorf("column %+v", c)
	}
}

func benchmarkDecode(b *testing.B, body []byte) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		st := getState()
		req := &Request{}
		if err := st.decodeREST(body, -1, &benchMeta, req); err != nil {
			b.Fatal(err)
		}
		st.release()
	}
}

// BenchmarkDecode1Row15Columns decodes a 1-row request of 15 column tensors (10 FP64, 5 BYTES).
func BenchmarkDecode1Row15Columns(b *testing.B) { benchmarkDecode(b, columnsBody(1)) }

// BenchmarkDecode100Rows decodes the same 15 columns with 100 rows each.
func BenchmarkDecode100Rows(b *testing.B) { benchmarkDecode(b, columnsBody(100)) }

// BenchmarkDecodeEncodingJSON1Row15Columns is the baseline: encoding/json into typed structs
// with json.RawMessage data, then the data into []any — what a straightforward decoder does.
func BenchmarkDecodeEncodingJSON1Row15Columns(b *testing.B) {
	body := columnsBody(1)
	type input struct {
		Name     string          `json:"name"`
		Shape    []int64         `json:"shape"`
		Datatype string          `json:"datatype"`
		Data     json.RawMessage `json:"data"`
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var req struct {
			ID     string  `json:"id"`
			Inputs []input `json:"inputs"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			b.Fatal(err)
		}
		for _, in := range req.Inputs {
			if in.Datatype == "BYTES" {
				var s []string
				if err := json.Unmarshal(in.Data, &s); err != nil {
					b.Fatal(err)
				}
			} else {
				var f []float64
				if err := json.Unmarshal(in.Data, &f); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// nopBackend answers every request with a one-value score per row.
type nopBackend struct{}

func (nopBackend) Live() bool                                     { return true }
func (nopBackend) Ready() bool                                    { return true }
func (nopBackend) Metadata(string, string) (ModelMetadata, error) { return benchMeta, nil }
func (nopBackend) ModelReady(string, string) (bool, error)        { return true, nil }
func (nopBackend) Infer(_ context.Context, name, _ string, req *Request) (*Response, error) {
	score := make([]float64, req.Rows)
	for i := range score {
		score[i] = 0.25
	}
	return &Response{ModelName: name, ModelVersion: "12", Outputs: []OutputTensor{
		{Name: "score", Datatype: "FP64", Shape: []int64{int64(req.Rows), 1}, FP64: score}}}, nil
}

// BenchmarkREST1Row is a whole REST inference, 1 row of 15 columns, through the handler
// (routing, body read, decode, backend, encode), without the network.
func BenchmarkREST1Row(b *testing.B) {
	h := NewREST(nopBackend{})
	body := columnsBody(1)
	b.ReportAllocs()
	r := httptest.NewRequest("POST", "/v2/models/bench/infer", nil)
	for b.Loop() {
		r.Body = http.NoBody
		r.Body = nopCloser{bytes.NewReader(body)}
		r.ContentLength = int64(len(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body)
		}
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func FuzzDecodeJSON(f *testing.F) {
	f.Add(columnsBody(1))
	f.Add(columnsBody(2))
	f.Add([]byte(`{"inputs":[{"name":"m","shape":[2,10],"datatype":"FP32","data":[[1,2,3,4,5,6,7,8,9,10],[NaN,-Infinity,"Inf",null,0,0,0,0,0,1e-3]]}]}`))
	f.Add([]byte(`{"id":"x","parameters":{"a":1,"b":"s","c":true,"binary_data_output":true},"inputs":[{"name":"b","shape":[1],"datatype":"BOOL","data":[true]}],"outputs":[{"name":"score","parameters":{"binary_data":false}}]}`))
	f.Add([]byte(`{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["\ud83d\ude00\u0000\n"]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"i","shape":[3],"datatype":"INT8","data":[1,-128,127]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecode(t, body, -1)
	})
}

func FuzzDecodeBinary(f *testing.F) {
	add := func(header string, data ...[]byte) {
		body := []byte(header)
		for _, d := range data {
			body = append(body, d...)
		}
		f.Add(body, int64(len(header)))
	}
	f64 := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, math.Float64bits(1.5)), math.Float64bits(-2))
	add(`{"inputs":[{"name":"a","shape":[2],"datatype":"FP64","parameters":{"binary_data_size":16}}]}`, f64)
	add(`{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":9}}]}`, []byte{1, 0, 0, 0, 'x', 0, 0, 0, 0})
	add(`{"inputs":[{"name":"h","shape":[1,10],"datatype":"FP16","parameters":{"binary_data_size":20}}]}`, make([]byte, 20))
	add(`{"inputs":[{"name":"u","shape":[2],"datatype":"UINT16","parameters":{"binary_data_size":4}},{"name":"b","shape":[2],"datatype":"BOOL","parameters":{"binary_data_size":2}}]}`, []byte{1, 2, 3, 4, 1, 0})
	f.Fuzz(func(t *testing.T, body []byte, headerLen int64) {
		checkDecode(t, body, headerLen)
	})
}

// checkDecode decodes any bytes: a request or an error, never a panic; a request is consistent.
func checkDecode(t *testing.T, body []byte, headerLen int64) {
	st := getState()
	defer st.release()
	req := &Request{}
	err := st.decodeREST(body, headerLen, &benchMeta, req)
	if err != nil {
		var e *Error
		if !asError(err, &e) || e.Status != 400 {
			t.Fatalf("error %v is not a 400", err)
		}
		return
	}
	if req.Rows < 1 || len(req.Columns) == 0 {
		t.Fatalf("request %+v", req)
	}
	for _, c := range req.Columns {
		if (c.Numbers == nil) == (c.Strings == nil) || len(c.Numbers)+len(c.Strings) != req.Rows {
			t.Fatalf("column %+v of %d rows", c, req.Rows)
		}
	}
}

func asError(err error, e **Error) bool {
	v, ok := err.(*Error)
	*e = v
	return ok
}

func TestHalfConversions(t *testing.T) {
	for _, tc := range []struct {
		h uint16
		v float64
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, math.Ldexp(1, -24)},
		{0x0400, math.Ldexp(1, -14)}, {0x3555, 0.333251953125}, {0x7c00, math.Inf(1)}, {0xfc00, math.Inf(-1)},
	} {
		if got := halfToFloat(tc.h); got != tc.v {
			t.Errorf("halfToFloat(%#04x) = %v, want %v", tc.h, got, tc.v)
		}
		if got := floatToHalf(tc.v); got != tc.h {
			t.Errorf("floatToHalf(%v) = %#04x, want %#04x", tc.v, got, tc.h)
		}
	}
	// Every finite half survives the round trip.
	for h := range uint32(0x10000) {
		v := halfToFloat(uint16(h))
		if math.IsNaN(v) {
			continue
		}
		if back := floatToHalf(v); back != uint16(h) && !(v == 0 && back&0x7fff == 0) {
			t.Fatalf("%#04x → %v → %#04x", h, v, back)
		}
	}
	if v, ok := roundFloat(dtFP16, 70000); ok || !math.IsInf(v, 1) {
		t.Errorf("70000 as FP16: %v %v", v, ok)
	}
	if floatToHalf(1+math.Ldexp(1, -11)) != 0x3c00 { // a tie rounds to even
		t.Errorf("tie")
	}
}

func TestScannerStrings(t *testing.T) {
	for in, want := range map[string]string{
		`"plain"`:              "plain",
		`"a\"b\\c\/d\n\t"`:     "a\"b\\c/d\n\t",
		`"\u00e9\ud83d\ude00"`: "é😀",
		`"\ud800x"`:            "\ufffdx",
		`"\udc00\ud800\u0041"`: "\ufffd\ufffdA",
	} {
		s := &scanner{b: []byte(in)}
		got, err := s.str()
		if err != nil || string(got) != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`"abc`, `"a\x"`, `"\u12"`, "\"a\x01\"", `"\`} {
		s := &scanner{b: []byte(in)}
		if _, err := s.str(); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	for _, in := range []string{"01", "1.", "-", "1e", ".5", "+1"} {
		body := `{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[` + in + `]}]}`
		st := getState()
		err := st.decodeREST([]byte(body), -1, &benchMeta, &Request{})
		st.release()
		if err == nil {
			t.Errorf("number %q accepted", in)
		}
	}
}

func TestNestingBounded(t *testing.T) {
	deep := `{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":` + strings.Repeat("[", 100000) + "1" + strings.Repeat("]", 100000) + `}]}`
	st := getState()
	defer st.release()
	err := st.decodeREST([]byte(deep), -1, &benchMeta, &Request{})
	if err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Errorf("deep data: %v", err)
	}
	deep = `{"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`
	if err := st.decodeREST([]byte(deep), -1, &benchMeta, &Request{}); err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Errorf("deep member: %v", err)
	}
}
