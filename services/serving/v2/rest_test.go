package v2_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	v2 "github.com/flywheel-ml/flywheel/services/serving/v2"
)

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %s", a.status, err, a.body)
	}
	return m
}

func (a answer) errMsg(t *testing.T) string {
	t.Helper()
	s, _ := a.json(t)["error"].(string)
	return s
}

func call(h http.Handler, method, path string, body []byte, hdr map[string]string) answer {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return answer{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

func TestServerMetadataAndHealth(t *testing.T) {
	t.Parallel()
	h := v2.NewREST(&fake{}, v2.WithServerVersion("1.2.3"))
	a := call(h, "GET", "/v2", nil, nil)
	if a.status != 200 {
		t.Fatalf("GET /v2: %d %s", a.status, a.body)
	}
	m := a.json(t)
	if m["name"] != "flywheel" || m["version"] != "1.2.3" {
		t.Errorf("server metadata %s", a.body)
	}
	if ext, _ := m["extensions"].([]any); len(ext) != 1 || ext[0] != "binary_tensor_data" {
		t.Errorf("extensions %v", m["extensions"])
	}
	if a.header.Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", a.header.Get("Content-Type"))
	}

	for _, tc := range []struct {
		b      *fake
		path   string
		status int
		body   string
	}{
		{&fake{}, "/v2/health/live", 200, `{"live":true}`},
		{&fake{}, "/v2/health/ready", 200, `{"ready":true}`},
		{&fake{notLive: true}, "/v2/health/live", 503, `{"live":false,"error":"the server is not live"}`},
		{&fake{notReady: true}, "/v2/health/ready", 503, `{"ready":false,"error":"no model is loaded and warm yet"}`},
	} {
		a := call(v2.NewREST(tc.b), "GET", tc.path, nil, nil)
		if a.status != tc.status || string(a.body) != tc.body {
			t.Errorf("%s: %d %s, want %d %s", tc.path, a.status, a.body, tc.status, tc.body)
		}
	}
}

func TestModelMetadataAndReady(t *testing.T) {
	t.Parallel()
	h := v2.NewREST(&fake{})
	for _, tc := range []struct {
		path   string
		status int
		check  func(t *testing.T, a answer)
	}{
		{"/v2/models/fraud", 200, func(t *testing.T, a answer) {
			var md struct {
				Name     string
				Versions []string
				Platform string
				Inputs   []struct {
					Name, Datatype string
					Shape          []int64
				}
				Outputs []struct {
					Name, Datatype string
					Shape          []int64
				}
				Properties map[string]string
			}
			if err := json.Unmarshal(a.body, &md); err != nil {
				t.Fatal(err)
			}
			if md.Name != "fraud" || len(md.Versions) != 2 || md.Platform != "flywheel_gbdt" || len(md.Inputs) != 5 ||
				md.Inputs[3].Datatype != "BYTES" || len(md.Outputs) != 2 || md.Outputs[0].Shape[1] != 1 {
				t.Errorf("metadata %s", a.body)
			}
			if md.Properties["matrix"] != "amount,txn_count_1h,amount_avg_24h" {
				t.Errorf("matrix property %q", md.Properties["matrix"])
			}
		}},
		{"/v2/models/fraud/versions/1", 200, nil},
		{"/v2/models/cold", 200, func(t *testing.T, a answer) {
			if !strings.Contains(string(a.body), `"inputs":[]`) || strings.Contains(string(a.body), "properties") {
				t.Errorf("cold metadata %s", a.body)
			}
		}},
		{"/v2/models/nope", 404, func(t *testing.T, a answer) {
			if a.errMsg(t) != `model "nope" is not served` {
				t.Errorf("error %s", a.body)
			}
		}},
		{"/v2/models/fraud/versions/9", 404, func(t *testing.T, a answer) {
			if a.errMsg(t) != `model "fraud" has no version "9"` {
				t.Errorf("error %s", a.body)
			}
		}},
		{"/v2/models/cold/versions/9", 404, func(t *testing.T, a answer) {
			if a.errMsg(t) != "cold: model version not found" {
				t.Errorf("wrapped sentinel keeps its text: %s", a.body)
			}
		}},
		{"/v2/models/fraud/ready", 200, func(t *testing.T, a answer) {
			if string(a.body) != `{"name":"fraud","ready":true}` {
				t.Errorf("ready %s", a.body)
			}
		}},
		{"/v2/models/fraud/versions/1/ready", 200, nil},
		{"/v2/models/cold/ready", 503, func(t *testing.T, a answer) {
			m := a.json(t)
			if m["ready"] != false || m["error"] != `model "cold" is not ready` {
				t.Errorf("not ready %s", a.body)
			}
		}},
		{"/v2/models/nope/ready", 404, nil},
		{"/v2/models/fraud/versions/7/ready", 404, nil},
	} {
		a := call(h, "GET", tc.path, nil, nil)
		if a.status != tc.status {
			t.Errorf("GET %s: %d %s, want %d", tc.path, a.status, a.body, tc.status)
			continue
		}
		if tc.check != nil {
			tc.check(t, a)
		}
	}
}

func TestRoutesNotFoundAndMethod(t *testing.T) {
	t.Parallel()
	h := v2.NewREST(&fake{})
	a := call(h, "GET", "/v2/models/fraud/infer", nil, nil)
	if a.status != 405 || a.header.Get("Allow") != "POST" || a.errMsg(t) == "" {
		t.Errorf("GET infer: %d %v %s", a.status, a.header, a.body)
	}
	a = call(h, "POST", "/v2/health/live", nil, nil)
	if a.status != 405 || !strings.HasPrefix(a.header.Get("Allow"), "GET") {
		t.Errorf("POST live: %d %v %s", a.status, a.header, a.body)
	}
	a = call(h, "GET", "/v2/nothing/here", nil, nil)
	if a.status != 404 || a.errMsg(t) != "no V2 route for GET /v2/nothing/here" {
		t.Errorf("unknown route: %d %s", a.status, a.body)
	}
}

const fraudRow = `{"id":"req-1","inputs":[
 {"name":"amount","shape":[1],"datatype":"FP64","data":[912.5]},
 {"name":"txn_count_1h","shape":[1,1],"datatype":"INT32","data":[[3]]},
 {"name":"amount_avg_24h","shape":[1],"datatype":"FP32","data":[40.25]},
 {"name":"merchant_category","shape":[1],"datatype":"BYTES","data":["electronics"]},
 {"name":"channel","shape":[1],"datatype":"BYTES","data":["ecom"]}]}`

func TestInferJSONColumns(t *testing.T) {
	t.Parallel()
	f := &fake{}
	h := v2.NewREST(f)
	a := call(h, "POST", "/v2/models/fraud/infer", []byte(fraudRow), map[string]string{"X-Flywheel-Model-Version": "challenger"})
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	want := `{"model_name":"fraud","model_version":"2","id":"req-1","parameters":{"rows":1},"outputs":[` +
		`{"name":"score","datatype":"FP64","shape":[1,1],"data":[970.75]},` +
		`{"name":"label","datatype":"INT64","shape":[1,1],"data":[1]}]}`
	if string(a.body) != want {
		t.Errorf("answer\n%s\nwant\n%s", a.body, want)
	}
	req := f.lastRequest()
	if req.ID != "req-1" || req.Rows != 1 || len(req.Columns) != 5 || req.Headers.Get("X-Flywheel-Model-Version") != "challenger" {
		t.Fatalf("request %+v", req)
	}
	c := req.Columns[1]
	if c.Name != "txn_count_1h" || c.Datatype != "INT32" || c.Numbers[0] != 3 || c.Strings != nil {
		t.Errorf("column %+v", c)
	}
	if c := req.Columns[3]; c.Name != "merchant_category" || c.Datatype != "BYTES" || c.Strings[0] != "electronics" || c.Numbers != nil {
		t.Errorf("column %+v", c)
	}

	// A version in the path; no id: none echoed.
	a = call(h, "POST", "/v2/models/fraud/versions/1/infer", []byte(strings.Replace(fraudRow, `"id":"req-1",`, "", 1)), nil)
	if a.status != 200 || a.json(t)["model_version"] != "1" || a.json(t)["id"] != nil {
		t.Errorf("versioned: %d %s", a.status, a.body)
	}
}

func TestInferMatrix(t *testing.T) {
	t.Parallel()
	f := &fake{}
	h := v2.NewREST(f)
	body := `{"inputs":[
	  {"name":"input-0","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5,"NaN"]]},
	  {"name":"channel","shape":[2],"datatype":"BYTES","data":["pos","atm"]}],
	 "outputs":[{"name":"label"},{"name":"score"}]}`
	a := call(h, "POST", "/v2/models/fraud/infer", []byte(body), nil)
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	want := `{"model_name":"fraud","model_version":"2","parameters":{"rows":2},"outputs":[` +
		`{"name":"label","datatype":"INT64","shape":[2,1],"data":[0,0]},` +
		`{"name":"score","datatype":"FP64","shape":[2,1],"data":[9,12]}]}`
	if string(a.body) != want {
		t.Errorf("answer\n%s\nwant\n%s", a.body, want)
	}
	req := f.lastRequest()
	if req.Rows != 2 || len(req.Columns) != 4 {
		t.Fatalf("request %+v", req)
	}
	for i, name := range []string{"amount", "txn_count_1h", "amount_avg_24h", "channel"} {
		if req.Columns[i].Name != name {
			t.Errorf("column %d is %q, want %q", i, req.Columns[i].Name, name)
		}
	}
	if n := req.Columns[0].Numbers; n[0] != 1 || n[1] != 4 {
		t.Errorf("amount %v", n)
	}
	if n := req.Columns[2].Numbers; n[0] != 3 || !math.IsNaN(n[1]) {
		t.Errorf("amount_avg_24h %v", n)
	}
	if s := req.Columns[3].Strings; s[0] != "pos" || s[1] != "atm" {
		t.Errorf("channel %v", s)
	}
}

func TestInferNonFinite(t *testing.T) {
	t.Parallel()
	f := &fake{}
	h := v2.NewREST(f)
	body := `{"inputs":[{"name":"amount","shape":[7],"datatype":"FP64",
	  "data":[NaN, Infinity, -Infinity, "NaN", "-Inf", null, 1e308]}]}`
	a := call(h, "POST", "/v2/models/fraud/infer", []byte(body), nil)
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	n := f.lastRequest().Columns[0].Numbers
	if !math.IsNaN(n[0]) || !math.IsInf(n[1], 1) || !math.IsInf(n[2], -1) || !math.IsNaN(n[3]) || !math.IsInf(n[4], -1) ||
		!math.IsNaN(n[5]) || n[6] != 1e308 {
		t.Errorf("values %v", n)
	}
	// Outputs with non-finite values are still valid JSON.
	if !strings.Contains(string(a.body), `"data":[0,"Infinity","-Infinity",0,"-Infinity",0,1e+308]`) {
		t.Errorf("answer %s", a.body)
	}
}

func TestInferBadRequests(t *testing.T) {
	t.Parallel()
	h := v2.NewREST(&fake{})
	in := func(s string) string { return `{"inputs":[` + s + `]}` }
	for _, tc := range []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"count", "", in(`{"name":"amount","shape":[2],"datatype":"FP64","data":[1,2,3]}`), 400,
			`input "amount": shape [2] needs 2 values, got 3`},
		{"count nested", "", in(`{"name":"amount","shape":[2,1],"datatype":"FP64","data":[[1]]}`), 400,
			`input "amount": shape [2,1] needs 2 values, got 1`},
		{"datatype", "", in(`{"name":"amount","shape":[1],"datatype":"FLOAT","data":[1]}`), 400,
			`input "amount": datatype "FLOAT" is not a V2 datatype (BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES)`},
		{"string for number", "", in(`{"name":"amount","shape":[1],"datatype":"FP64","data":["12.5"]}`), 400,
			`input "amount" (FP64): data[0]: the string "12.5" is not a number`},
		{"number for string", "", in(`{"name":"channel","shape":[1],"datatype":"BYTES","data":[1]}`), 400,
			`input "channel" (BYTES): data[0]: want a string`},
		{"int fraction", "", in(`{"name":"n","shape":[1],"datatype":"INT64","data":[2.5]}`), 400,
			`input "n" (INT64): data[0]: 2.5 is not an integer`},
		{"int range", "", in(`{"name":"n","shape":[2],"datatype":"UINT8","data":[255,256]}`), 400,
			`input "n" (UINT8): data[1]: 256 is out of range`},
		{"negative unsigned", "", in(`{"name":"n","shape":[1],"datatype":"UINT32","data":[-1]}`), 400,
			`input "n" (UINT32): data[0]: -1 is out of range`},
		{"fp32 range", "", in(`{"name":"n","shape":[1],"datatype":"FP32","data":[1e39]}`), 400,
			`input "n" (FP32): data[0]: 1e39 is out of range`},
		{"bool", "", in(`{"name":"n","shape":[1],"datatype":"BOOL","data":[1]}`), 400,
			`input "n" (BOOL): data[0]: 1 is a number, want true or false`},
		{"null int", "", in(`{"name":"n","shape":[1],"datatype":"INT8","data":[null]}`), 400,
			`input "n" (INT8): data[0]: null is a missing value, which only FP16, FP32 and FP64 hold (as NaN)`},
		{"fp16 json", "", in(`{"name":"n","shape":[1],"datatype":"FP16","data":[1]}`), 400,
			`input "n": FP16 cannot be sent as JSON numbers; send it as binary data or use FP32`},
		{"rank 3", "", in(`{"name":"n","shape":[1,1,1],"datatype":"FP64","data":[1]}`), 400,
			`input "n": shape [1,1,1]: an input is [N] or [N,1] (one column) or [N,3] (the model's 3 matrix columns)`},
		{"matrix width", "", in(`{"name":"m","shape":[1,2],"datatype":"FP64","data":[1,2]}`), 400,
			`input "m": shape [1,2]: an input is [N] or [N,1] (one column) or [N,3] (the model's 3 matrix columns)`},
		{"rows", "", in(`{"name":"a","shape":[1],"datatype":"FP64","data":[1]},{"name":"b","shape":[2],"datatype":"FP64","data":[1,2]}`), 400,
			`input "b" has 2 rows, input "a" has 1`},
		{"no rows", "", in(`{"name":"a","shape":[0],"datatype":"FP64","data":[]}`), 400,
			`input "a": shape [0] has no rows`},
		{"duplicate", "", in(`{"name":"m","shape":[1,3],"datatype":"FP64","data":[1,2,3]},{"name":"amount","shape":[1],"datatype":"FP64","data":[1]}`), 400,
			`column "amount" is given twice`},
		{"no inputs", "", `{"inputs":[]}`, 400, `the request has no inputs`},
		{"no data", "", in(`{"name":"a","shape":[1],"datatype":"FP64"}`), 400, `input "a": no "data" (nor parameters.binary_data_size)`},
		{"no shape", "", in(`{"name":"a","datatype":"FP64","data":[1]}`), 400, `input "a": no "shape"`},
		{"negative dim", "", in(`{"name":"a","shape":[-1],"datatype":"FP64","data":[1]}`), 400, `input "a": a shape holds dimensions ≥ 0`},
		{"bad json", "", `{"inputs":[{"name":"a",}]}`, 400, `invalid JSON at byte 23: unexpected '}', want a member name`},
		{"trailing", "", in(`{"name":"a","shape":[1],"datatype":"FP64","data":[1]}`) + `x`, 400, `invalid JSON at byte 66: data after the request object`},
		{"object in data", "", in(`{"name":"a","shape":[1],"datatype":"FP64","data":[{}]}`), 400,
			`invalid JSON at byte 61: tensor data holds an object; want numbers, strings or booleans`},
		{"parameter type", "", `{"parameters":{"x":[1]},"inputs":[]}`, 400, `parameter "x": a parameter is a string, number or boolean`},
		{"unknown output", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[1]}],"outputs":[{"name":"proba"}]}`, 400,
			`unknown output "proba" (the model's outputs: "score" "label")`},
		{"output twice", "", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[1]}],"outputs":[{"name":"score"},{"name":"score"}]}`, 400,
			`output "score" is requested twice`},
		{"binary without header", "", in(`{"name":"a","shape":[1],"datatype":"FP64","parameters":{"binary_data_size":8}}`), 400,
			`input "a": parameters.binary_data_size needs the Inference-Header-Content-Length header`},
		{"unknown model", "/v2/models/nope/infer", fraudRow, 404, `model "nope" is not served`},
		{"unknown version", "/v2/models/fraud/versions/3/infer", fraudRow, 404, `model "fraud" has no version "3"`},
		{"not ready", "/v2/models/cold/infer", in(`{"name":"a","shape":[1],"datatype":"FP64","data":[1]}`), 503, `model "cold" is not loaded yet`},
		{"backend status", "", in(`{"name":"teapot","shape":[1],"datatype":"FP64","data":[1]}`), 418, `short and stout`},
		{"backend bug", "", in(`{"name":"boom","shape":[1],"datatype":"FP64","data":[1]}`), 500, `internal error`},
	} {
		path := tc.path
		if path == "" {
			path = "/v2/models/fraud/infer"
		}
		a := call(h, "POST", path, []byte(tc.body), nil)
		if a.status != tc.status || a.errMsg(t) != tc.msg {
			t.Errorf("%s: %d %s\nwant %d %q", tc.name, a.status, a.body, tc.status, tc.msg)
		}
	}
}

func TestErrorLogAndBodyLimit(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var logged []string
	h := v2.NewREST(&fake{}, v2.WithMaxBodyBytes(100), v2.WithErrorLog(func(_ context.Context, op string, status int, err error) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, op+" "+strconv.Itoa(status)+" "+err.Error())
	}))
	a := call(h, "POST", "/v2/models/fraud/infer", []byte(`{"inputs":[{"name":"boom","shape":[1],"datatype":"FP64","data":[1]}]}`), nil)
	if a.status != 500 || a.errMsg(t) != "internal error" {
		t.Errorf("%d %s", a.status, a.body)
	}
	a = call(h, "POST", "/v2/models/fraud/infer", bytes.Repeat([]byte(" "), 101), nil)
	if a.status != 413 || a.errMsg(t) != "request body exceeds the limit of 100 bytes" || a.header.Get("Connection") != "close" {
		t.Errorf("%d %v %s", a.status, a.header, a.body)
	}
	// Without Content-Length (chunked): the limit holds while reading.
	r := httptest.NewRequest("POST", "/v2/models/fraud/infer", io.MultiReader(strings.NewReader(strings.Repeat(" ", 150))))
	r.ContentLength = -1
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 413 {
		t.Errorf("chunked: %d %s", w.Code, w.Body)
	}
	a = call(h, "POST", "/v2/models/fraud/infer", []byte(`{}`), map[string]string{"Content-Encoding": "gzip"})
	if a.status != 415 {
		t.Errorf("gzip: %d %s", a.status, a.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 4 || logged[0] != "POST /v2/models/{name}/infer 500 scorer exploded: secret internals" {
		t.Errorf("logged %q", logged)
	}
}

// binaryRequest builds a binary-extension body: the JSON header, then each binary input's bytes.
func binaryRequest(t *testing.T, header any, data ...[]byte) ([]byte, map[string]string) {
	t.Helper()
	j, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	body := append([]byte(nil), j...)
	for _, d := range data {
		body = append(body, d...)
	}
	return body, map[string]string{v2.HeaderLength: strconv.Itoa(len(j)), "Content-Type": "application/octet-stream"}
}

func le64(vs ...float64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

func le32f(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func bytesElems(ss ...string) []byte {
	var b []byte
	for _, s := range ss {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

type obj = map[string]any

func binInput(name, dt string, shape []int, size int) obj {
	return obj{"name": name, "datatype": dt, "shape": shape, "parameters": obj{"binary_data_size": size}}
}

func TestInferBinaryEqualsJSON(t *testing.T) {
	t.Parallel()
	f := &fake{}
	h := v2.NewREST(f)
	jsonBody := `{"id":"b","inputs":[
	 {"name":"amount","shape":[2],"datatype":"FP64","data":[912.5, 3.25]},
	 {"name":"txn_count_1h","shape":[2],"datatype":"INT16","data":[3, -2]},
	 {"name":"amount_avg_24h","shape":[2,1],"datatype":"FP32","data":[[40.25],[0.5]]},
	 {"name":"merchant_category","shape":[2],"datatype":"BYTES","data":["electronics","gro\u00e7ery"]},
	 {"name":"flag","shape":[2],"datatype":"BOOL","data":[true,false]}]}`
	want := call(h, "POST", "/v2/models/fraud/infer", []byte(jsonBody), nil)
	if want.status != 200 {
		t.Fatalf("JSON: %d %s", want.status, want.body)
	}
	wantReq := f.lastRequest()

	i16 := binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, 3), uint16(0xfffe))
	cats := bytesElems("electronics", "groçery")
	body, hdr := binaryRequest(t, obj{"id": "b", "inputs": []obj{
		binInput("amount", "FP64", []int{2}, 16),
		binInput("txn_count_1h", "INT16", []int{2}, 4),
		{"name": "amount_avg_24h", "shape": []int{2, 1}, "datatype": "FP32", "data": []float64{40.25, 0.5}}, // JSON among binary
		binInput("merchant_category", "BYTES", []int{2}, len(cats)),
		binInput("flag", "BOOL", []int{2}, 2),
	}}, le64(912.5, 3.25), i16, cats, []byte{1, 0})
	got := call(h, "POST", "/v2/models/fraud/infer", body, hdr)
	if got.status != 200 || !bytes.Equal(got.body, want.body) {
		t.Fatalf("binary answer %d\n%s\nJSON answer\n%s", got.status, got.body, want.body)
	}
	gotReq := f.lastRequest()
	if len(gotReq.Columns) != len(wantReq.Columns) {
		t.Fatalf("columns %d vs %d", len(gotReq.Columns), len(wantReq.Columns))
	}
	for i := range gotReq.Columns {
		g, w := gotReq.Columns[i], wantReq.Columns[i]
		if g.Name != w.Name || g.Datatype != w.Datatype || !equalFloats(g.Numbers, w.Numbers) || strings.Join(g.Strings, "|") != strings.Join(w.Strings, "|") {
			t.Errorf("column %d: binary %+v, JSON %+v", i, g, w)
		}
	}

	// The matrix as one FP32 binary tensor gives the same columns as the matrix in JSON.
	mat := le32f(1, 2, 3, 4, 5, 6)
	body, hdr = binaryRequest(t, obj{"inputs": []obj{binInput("x", "FP32", []int{2, 3}, len(mat))}}, mat)
	got = call(h, "POST", "/v2/models/fraud/infer", body, hdr)
	want = call(h, "POST", "/v2/models/fraud/infer", []byte(`{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]}`), nil)
	if got.status != 200 || !bytes.Equal(got.body, want.body) {
		t.Errorf("binary matrix %d %s, JSON %s", got.status, got.body, want.body)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

func TestInferBinaryFP16(t *testing.T) {
	t.Parallel()
	f := &fake{}
	h := v2.NewREST(f)
	// 1.5, -2, 65504, NaN as IEEE half.
	half := []byte{0x00, 0x3e, 0x00, 0xc0, 0xff, 0x7b, 0x00, 0x7e}
	body, hdr := binaryRequest(t, obj{"inputs": []obj{binInput("amount", "FP16", []int{4}, 8)}}, half)
	if a := call(h, "POST", "/v2/models/fraud/infer", body, hdr); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	n := f.lastRequest().Columns[0].Numbers
	if n[0] != 1.5 || n[1] != -2 || n[2] != 65504 || !math.IsNaN(n[3]) {
		t.Errorf("halves %v", n)
	}
}

func TestInferBinaryOutputs(t *testing.T) {
	t.Parallel()
	h := v2.NewREST(&fake{})
	in := `{"name":"amount","shape":[2],"datatype":"FP64","data":[120.5, 7]}`
	for _, tc := range []struct {
		name, body string
		binary     []string // outputs expected as binary, in answer order
		json       []string
	}{
		{"request parameter", `{"parameters":{"binary_data_output":true},"inputs":[` + in + `]}`, []string{"score", "label"}, nil},
		{"per output", `{"inputs":[` + in + `],"outputs":[{"name":"label","parameters":{"binary_data":true}},{"name":"score"}]}`, []string{"label"}, []string{"score"}},
		{"override", `{"parameters":{"binary_data_output":true},"inputs":[` + in + `],"outputs":[{"name":"score","parameters":{"binary_data_output":false}},{"name":"label"}]}`,
			[]string{"label"}, []string{"score"}},
	} {
		a := call(h, "POST", "/v2/models/fraud/infer", []byte(tc.body), nil)
		if a.status != 200 {
			t.Fatalf("%s: %d %s", tc.name, a.status, a.body)
		}
		if a.header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("%s: content type %q", tc.name, a.header.Get("Content-Type"))
		}
		hl, err := strconv.Atoi(a.header.Get(v2.HeaderLength))
		if err != nil || hl > len(a.body) {
			t.Fatalf("%s: %s %q", tc.name, v2.HeaderLength, a.header.Get(v2.HeaderLength))
		}
		if cl := a.header.Get("Content-Length"); cl != strconv.Itoa(len(a.body)) {
			t.Errorf("%s: Content-Length %s for %d bytes", tc.name, cl, len(a.body))
		}
		var resp struct {
			Outputs []struct {
				Name       string
				Datatype   string
				Shape      []int64
				Data       []float64
				Parameters map[string]int
			}
		}
		if err := json.Unmarshal(a.body[:hl], &resp); err != nil {
			t.Fatalf("%s: header %v: %s", tc.name, err, a.body[:hl])
		}
		rest := a.body[hl:]
		var bin, js []string
		for _, o := range resp.Outputs {
			size, isBin := o.Parameters["binary_data_size"]
			if !isBin {
				js = append(js, o.Name)
				if o.Name == "score" && (o.Data[0] != 120.5 || o.Data[1] != 7) {
					t.Errorf("%s: JSON score %v", tc.name, o.Data)
				}
				continue
			}
			bin = append(bin, o.Name)
			if o.Data != nil || size != 16 || len(rest) < size {
				t.Fatalf("%s: output %+v with %d bytes left", tc.name, o, len(rest))
			}
			raw := rest[:size]
			rest = rest[size:]
			switch o.Name {
			case "score":
				if math.Float64frombits(binary.LittleEndian.Uint64(raw)) != 120.5 || math.Float64frombits(binary.LittleEndian.Uint64(raw[8:])) != 7 {
					t.Errorf("%s: score bytes %x", tc.name, raw)
				}
			case "label":
				if int64(binary.LittleEndian.Uint64(raw)) != 1 || int64(binary.LittleEndian.Uint64(raw[8:])) != 0 {
					t.Errorf("%s: label bytes %x", tc.name, raw)
				}
			}
		}
		if len(rest) != 0 || strings.Join(bin, ",") != strings.Join(tc.binary, ",") || strings.Join(js, ",") != strings.Join(tc.json, ",") {
			t.Errorf("%s: binary %v json %v (%d bytes left)", tc.name, bin, js, len(rest))
		}
	}
}

func TestInferBinaryBadBodies(t *testing.T) {
	t.Parallel()
	h := v2.NewREST(&fake{})
	good, hdr := binaryRequest(t, obj{"inputs": []obj{binInput("amount", "FP64", []int{2}, 16)}}, le64(1, 2))
	hl := hdr[v2.HeaderLength]
	for _, tc := range []struct {
		name   string
		body   []byte
		hlen   string
		status int
		msg    string
	}{
		{"truncated", good[:len(good)-3], hl, 400, `input "amount": binary_data_size 16 but only 13 bytes of binary data are left`},
		{"extra", append(append([]byte(nil), good...), 9, 9), hl, 400,
			`2 bytes of binary data follow the last binary input (the binary_data_size values add up to less than the body)`},
		{"header past body", good, strconv.Itoa(len(good) + 1), 400, v2.HeaderLength + " " + strconv.Itoa(len(good)+1) + " exceeds the " + strconv.Itoa(len(good)) + "-byte body"},
		{"header cuts json", good, "10", 400, `invalid JSON at byte 10: unexpected end of input, want an array of inputs`},
		{"not a number", good, "abc", 400, v2.HeaderLength + ` "abc" is not a length`},
		{"raw binary", good, "0", 400, v2.HeaderLength + " 0 (a raw binary request without a JSON header) is not supported; send the JSON header"},
	} {
		a := call(h, "POST", "/v2/models/fraud/infer", tc.body, map[string]string{v2.HeaderLength: tc.hlen})
		if a.status != tc.status || a.errMsg(t) != tc.msg {
			t.Errorf("%s: %d %s\nwant %d %q", tc.name, a.status, a.body, tc.status, tc.msg)
		}
	}

	sizeMismatch, hdr2 := binaryRequest(t, obj{"inputs": []obj{binInput("amount", "FP64", []int{3}, 16)}}, le64(1, 2))
	a := call(h, "POST", "/v2/models/fraud/infer", sizeMismatch, hdr2)
	if a.status != 400 || a.errMsg(t) != `input "amount": shape [3] of FP64 needs 24 bytes, got 16` {
		t.Errorf("size mismatch: %d %s", a.status, a.body)
	}
	badBytes, hdr3 := binaryRequest(t, obj{"inputs": []obj{binInput("channel", "BYTES", []int{1}, 6)}}, []byte{9, 0, 0, 0, 'a', 'b'})
	a = call(h, "POST", "/v2/models/fraud/infer", badBytes, hdr3)
	if a.status != 400 || a.errMsg(t) != `input "channel": BYTES element 0 declares 9 bytes, 2 left` {
		t.Errorf("BYTES overrun: %d %s", a.status, a.body)
	}
}

// Huge declared sizes are refused from the bytes actually received, without allocating for them.
func TestInferHugeDeclarationsDoNotAllocate(t *testing.T) {
	h := v2.NewREST(&fake{})
	cases := []struct {
		name string
		body []byte
		hdr  map[string]string
		msg  string
	}{}
	add := func(name string, header any, msg string, data ...[]byte) {
		body, hdr := binaryRequest(t, header, data...)
		cases = append(cases, struct {
			name string
			body []byte
			hdr  map[string]string
			msg  string
		}{name, body, hdr, msg})
	}
	add("binary_data_size", obj{"inputs": []obj{binInput("amount", "FP64", []int{2}, 1<<62)}},
		`input "amount": binary_data_size 4611686018427387904 but only 16 bytes of binary data are left`, le64(1, 2))
	add("shape", obj{"inputs": []obj{binInput("amount", "FP64", []int{1 << 61}, 16)}},
		`input "amount": shape [2305843009213693952] of FP64 needs more than 16 bytes, got 16`, le64(1, 2))
	add("shape product", obj{"inputs": []obj{binInput("m", "FP64", []int{1 << 62, 3}, 16)}},
		`input "m": shape [4611686018427387904,3] of FP64 needs more than 16 bytes, got 16`, le64(1, 2))
	add("json shape", obj{"inputs": []obj{{"name": "amount", "datatype": "FP64", "shape": []int{1 << 60}, "data": []int{1}}}},
		`input "amount": shape [1152921504606846976] needs 1152921504606846976 values, got 1`)
	add("bytes prefix", obj{"inputs": []obj{binInput("channel", "BYTES", []int{1}, 8)}},
		`input "channel": BYTES element 0 declares 4294967295 bytes, 4 left`, []byte{0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c', 'd'})
	for _, tc := range cases {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		a := call(h, "POST", "/v2/models/fraud/infer", tc.body, tc.hdr)
		runtime.ReadMemStats(&after)
		if a.status != 400 || a.errMsg(t) != tc.msg {
			t.Errorf("%s: %d %s\nwant %q", tc.name, a.status, a.body, tc.msg)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
			t.Errorf("%s: allocated %d bytes", tc.name, d)
		}
	}
}
