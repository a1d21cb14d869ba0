package v2

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// DefaultMaxBodyBytes bounds a REST request body (and a gRPC message) unless WithMaxBodyBytes
// says otherwise; Triton's default --http-max-input-size is the same 64 MiB.
const DefaultMaxBodyBytes = 64 << 20

// Option configures NewREST, NewGRPC and Register.
type Option func(*options)

type options struct {
	maxBody int64
	version string
	onError func(ctx context.Context, op string, status int, err error)
}

func buildOptions(opts []Option) options {
	o := options{maxBody: DefaultMaxBodyBytes, version: "dev"}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithMaxBodyBytes bounds a request body (REST, answered 413 past it) and a received message
// (gRPC, ResourceExhausted).
func WithMaxBodyBytes(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.maxBody = n
		}
	}
}

// WithServerVersion sets the version the server metadata reports (default "dev").
func WithServerVersion(v string) Option { return func(o *options) { o.version = v } }

// WithErrorLog is called once for every failed request with the error as it was, before the
// client gets its (for a 500, redacted) message: op is the REST route pattern or the gRPC full
// method, status the HTTP status (gRPC: the status its code was derived from). The package logs
// nothing by itself.
func WithErrorLog(f func(ctx context.Context, op string, status int, err error)) Option {
	return func(o *options) { o.onError = f }
}

// ServerName is what the server metadata calls this server.
const ServerName = "flywheel"

// Extensions lists the V2 extensions the front ends support.
var Extensions = []string{"binary_tensor_data"}

type rest struct {
	b   Backend
	o   options
	mux *http.ServeMux
}

// NewREST returns the V2 REST front end: the routes below under /v2, answering JSON (or JSON
// followed by binary tensor data), errors as {"error": "..."}.
//
//	GET  /v2                                          server metadata
//	GET  /v2/health/live, /v2/health/ready            200, or 503 when not
//	GET  /v2/models/{name}[/versions/{version}]       model metadata
//	GET  /v2/models/{name}[/versions/{version}]/ready 200, or 503 when not ready
//	POST /v2/models/{name}[/versions/{version}]/infer inference
//
// Mount it as it is (its patterns are absolute paths); requests for other paths get a JSON 404,
// and a known path with the wrong method a 405 with Allow.
func NewREST(b Backend, opts ...Option) http.Handler {
	h := &rest{b: b, o: buildOptions(opts), mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /v2", h.serverMetadata)
	h.mux.HandleFunc("GET /v2/health/live", h.live)
	h.mux.HandleFunc("GET /v2/health/ready", h.ready)
	h.mux.HandleFunc("GET /v2/models/{name}", h.modelMetadata)
	h.mux.HandleFunc("GET /v2/models/{name}/versions/{version}", h.modelMetadata)
	h.mux.HandleFunc("GET /v2/models/{name}/ready", h.modelReady)
	h.mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", h.modelReady)
	h.mux.HandleFunc("POST /v2/models/{name}/infer", h.infer)
	h.mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", h.infer)
	h.mux.HandleFunc("/", h.unmatched)
	return h
}

func (h *rest) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Header values shared by every response (never modified in place: Set replaces the slice,
// Add appends past its capacity).
var (
	ctJSON   = []string{"application/json"}
	ctBinary = []string{"application/octet-stream"}
)

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	hd := w.Header()
	hd["Content-Type"] = ctJSON
	hd["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeValue(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		body = []byte(`{"error":"internal error"}`)
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, body)
}

// fail answers an error as {"error": "..."} with its status.
func (h *rest) fail(w http.ResponseWriter, r *http.Request, err error, model, version string) {
	status := statusOf(err)
	if h.o.onError != nil {
		h.o.onError(r.Context(), r.Pattern, status, err)
	}
	if status == http.StatusRequestEntityTooLarge {
		// The body was left unread: the connection cannot be reused.
		w.Header().Set("Connection", "close")
	}
	body := append([]byte(`{"error":`), appendString(nil, messageOf(err, status, model, version))...)
	writeJSON(w, status, append(body, '}'))
}

func (h *rest) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range [...]string{http.MethodGet, http.MethodPost} {
		if m == r.Method {
			continue
		}
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := h.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		if allow[0] == http.MethodGet {
			allow = append(allow, http.MethodHead)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.fail(w, r, &Error{Status: http.StatusMethodNotAllowed, Msg: "method " + r.Method + " is not allowed on " + r.URL.Path}, "", "")
		return
	}
	h.fail(w, r, &Error{Status: http.StatusNotFound, Msg: "no V2 route for " + r.Method + " " + r.URL.Path}, "", "")
}

func (h *rest) serverMetadata(w http.ResponseWriter, r *http.Request) {
	writeValue(w, http.StatusOK, struct {
		Name       string   `json:"name"`
		Version    string   `json:"version"`
		Extensions []string `json:"extensions"`
	}{ServerName, h.o.version, Extensions})
}

func (h *rest) live(w http.ResponseWriter, r *http.Request) {
	if h.b.Live() {
		writeJSON(w, http.StatusOK, []byte(`{"live":true}`))
		return
	}
	h.o.logNotReady(r, "the server is not live")
	writeJSON(w, http.StatusServiceUnavailable, []byte(`{"live":false,"error":"the server is not live"}`))
}

func (h *rest) ready(w http.ResponseWriter, r *http.Request) {
	if h.b.Ready() {
		writeJSON(w, http.StatusOK, []byte(`{"ready":true}`))
		return
	}
	h.o.logNotReady(r, "no model is loaded and warm yet")
	writeJSON(w, http.StatusServiceUnavailable, []byte(`{"ready":false,"error":"no model is loaded and warm yet"}`))
}

func (o *options) logNotReady(r *http.Request, msg string) {
	if o.onError != nil {
		o.onError(r.Context(), r.Pattern, http.StatusServiceUnavailable, errors.New(msg))
	}
}

type tensorMetadataJSON struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

type modelMetadataJSON struct {
	Name       string               `json:"name"`
	Versions   []string             `json:"versions,omitempty"`
	Platform   string               `json:"platform"`
	Inputs     []tensorMetadataJSON `json:"inputs"`
	Outputs    []tensorMetadataJSON `json:"outputs"`
	Properties map[string]string    `json:"properties,omitempty"`
}

// MatrixProperty is the model metadata property (REST "properties", gRPC
// ModelMetadataResponse.properties) listing, comma-separated and in order, the columns a 2-D
// input [N, F] maps to.
const MatrixProperty = "matrix"

func tensorsJSON(ts []TensorMetadata) []tensorMetadataJSON {
	out := make([]tensorMetadataJSON, len(ts))
	for i, t := range ts {
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		out[i] = tensorMetadataJSON{Name: t.Name, Datatype: t.Datatype, Shape: shape}
	}
	return out
}

func matrixProperties(md *ModelMetadata) map[string]string {
	if len(md.Matrix) == 0 {
		return nil
	}
	return map[string]string{MatrixProperty: strings.Join(md.Matrix, ",")}
}

func (h *rest) modelMetadata(w http.ResponseWriter, r *http.Request) {
	name, version := r.PathValue("name"), r.PathValue("version")
	md, err := h.b.Metadata(name, version)
	if err != nil {
		h.fail(w, r, err, name, version)
		return
	}
	writeValue(w, http.StatusOK, modelMetadataJSON{
		Name: md.Name, Versions: md.Versions, Platform: md.Platform,
		Inputs: tensorsJSON(md.Inputs), Outputs: tensorsJSON(md.Outputs),
		Properties: matrixProperties(&md),
	})
}

func (h *rest) modelReady(w http.ResponseWriter, r *http.Request) {
	name, version := r.PathValue("name"), r.PathValue("version")
	ok, err := h.b.ModelReady(name, version)
	if err != nil {
		h.fail(w, r, err, name, version)
		return
	}
	type readyJSON struct {
		Name  string `json:"name"`
		Ready bool   `json:"ready"`
		Error string `json:"error,omitempty"`
	}
	if !ok {
		msg := "model " + strconv.Quote(name) + " is not ready"
		h.o.logNotReady(r, msg)
		writeValue(w, http.StatusServiceUnavailable, readyJSON{Name: name, Error: msg})
		return
	}
	writeValue(w, http.StatusOK, readyJSON{Name: name, Ready: true})
}

// state is one request's reusable memory: the body, the decoder's scratch, the response
// buffer. Nothing in it reaches the backend.
type state struct {
	body []byte
	out  []byte
	hdr  header
	sc   scratch
	want []wantOut
	sel  []selOut
}

var states = sync.Pool{New: func() any { return new(state) }}

// keepBytes is the largest buffer a state keeps for the next request.
const keepBytes = 1 << 20

func getState() *state { return states.Get().(*state) }

func (st *state) release() {
	if cap(st.body) > keepBytes {
		st.body = nil
	}
	if cap(st.out) > keepBytes {
		st.out = nil
	}
	if cap(st.sc.arena) > keepBytes {
		st.sc.arena = nil
	}
	if cap(st.sc.offs) > keepBytes/8 {
		st.sc.offs = nil
	}
	// Drop references into the body, the backend's response and gRPC messages.
	clear(st.hdr.inputs[:cap(st.hdr.inputs)])
	clear(st.hdr.outputs[:cap(st.hdr.outputs)])
	st.hdr.reset()
	st.hdr.id = nil
	clear(st.sc.tensors[:cap(st.sc.tensors)])
	st.sc.tensors = st.sc.tensors[:0]
	clear(st.sel[:cap(st.sel)])
	st.sel = st.sel[:0]
	st.want = st.want[:0]
	states.Put(st)
}

// readBody reads the whole body into st.body, refusing more than limit bytes: at once when
// Content-Length announces more, else when the reading passes it.
func (st *state) readBody(r *http.Request, limit int64) ([]byte, error) {
	tooLarge := &Error{Status: http.StatusRequestEntityTooLarge,
		Msg: "request body exceeds the limit of " + strconv.FormatInt(limit, 10) + " bytes"}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	if r.ContentLength >= 0 {
		n := int(r.ContentLength)
		if cap(st.body) < n {
			st.body = make([]byte, n)
		}
		b := st.body[:n]
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, readError(err)
		}
		return b, nil
	}
	b := st.body[:0]
	lr := io.LimitReader(r.Body, limit+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			st.body = b
			return nil, readError(err)
		}
	}
	st.body = b
	if int64(len(b)) > limit {
		return nil, tooLarge
	}
	return b, nil
}

func readError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return &Error{Status: http.StatusRequestEntityTooLarge,
			Msg: "request body exceeds the limit of " + strconv.FormatInt(mb.Limit, 10) + " bytes"}
	}
	return &Error{Status: http.StatusBadRequest, Msg: "reading the request body: " + err.Error()}
}

// HeaderLength is the binary tensor data extension's header: the length of the JSON object at
// the start of a body that continues with binary tensor data.
const HeaderLength = "Inference-Header-Content-Length"

func (h *rest) infer(w http.ResponseWriter, r *http.Request) {
	name, version := r.PathValue("name"), r.PathValue("version")
	if ce := r.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		h.fail(w, r, &Error{Status: http.StatusUnsupportedMediaType, Msg: "Content-Encoding " + ce + " is not supported; send the body uncompressed"}, name, version)
		return
	}
	headerLen := int64(-1)
	if v, ok := r.Header[HeaderLength]; ok && len(v) > 0 {
		n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64)
		if err != nil || n < 0 {
			h.fail(w, r, badRequest(HeaderLength+" "+strconv.Quote(v[0])+" is not a length"), name, version)
			return
		}
		headerLen = n
	}
	md, err := h.b.Metadata(name, version)
	if err != nil {
		h.fail(w, r, err, name, version)
		return
	}
	st := getState()
	defer st.release()
	body, err := st.readBody(r, h.o.maxBody)
	if err != nil {
		h.fail(w, r, err, name, version)
		return
	}
	req := &Request{Headers: r.Header}
	if err := st.decodeREST(body, headerLen, &md, req); err != nil {
		h.fail(w, r, err, name, version)
		return
	}
	resp, err := h.b.Infer(r.Context(), name, version, req)
	if err != nil {
		h.fail(w, r, err, name, version)
		return
	}
	if resp == nil {
		h.fail(w, r, errors.New("backend returned no response and no error"), name, version)
		return
	}
	sel, err := selectOutputs(st.sel, resp.Outputs, st.want, st.hdr.hasOutputs, st.hdr.binaryOutput)
	if err != nil {
		h.fail(w, r, err, name, version)
		return
	}
	st.sel = sel
	model, id := resp.ModelName, resp.ID
	if model == "" {
		model = name
	}
	if id == "" {
		id = req.ID
	}
	out := appendResponseJSON(st.out[:0], model, resp.ModelVersion, id, resp.Parameters, sel)
	jsonLen := len(out)
	for i := range sel {
		if sel[i].binary {
			out = sel[i].appendRaw(out)
		}
	}
	st.out = out
	hd := w.Header()
	if len(out) > jsonLen {
		hd["Content-Type"] = ctBinary
		hd[HeaderLength] = []string{strconv.Itoa(jsonLen)}
	} else if anyBinary(sel) {
		// Binary outputs with no bytes (empty tensors): still a binary response.
		hd["Content-Type"] = ctBinary
		hd[HeaderLength] = []string{strconv.Itoa(jsonLen)}
	} else {
		hd["Content-Type"] = ctJSON
	}
	hd["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func anyBinary(sel []selOut) bool {
	for i := range sel {
		if sel[i].binary {
			return true
		}
	}
	return false
}

// decodeREST decodes a REST inference request body into req: the JSON object (all of body, or
// its first headerLen bytes), then, in input order, the binary data of the inputs that declare
// parameters.binary_data_size. It also records the requested outputs in st.
func (st *state) decodeREST(body []byte, headerLen int64, md *ModelMetadata, req *Request) error {
	jsonPart, bin := body, []byte(nil)
	if headerLen >= 0 {
		switch {
		case headerLen == 0:
			return badRequest(HeaderLength + " 0 (a raw binary request without a JSON header) is not supported; send the JSON header")
		case headerLen > int64(len(body)):
			return badRequest(HeaderLength + " " + strconv.FormatInt(headerLen, 10) + " exceeds the " + strconv.Itoa(len(body)) + "-byte body")
		}
		jsonPart, bin = body[:headerLen], body[headerLen:]
	}
	st.hdr.reset()
	if err := parseHeader(jsonPart, &st.hdr); err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			return badRequest(se.Error())
		}
		return err
	}
	ts := st.sc.tensors[:0]
	for i := range st.hdr.inputs {
		in := &st.hdr.inputs[i]
		t := tensor{name: intern(in.name, md), dt: in.dt, shape: in.shape[:in.rank]}
		if in.hasBin {
			switch {
			case headerLen < 0:
				return badRequest(t.label() + ": parameters.binary_data_size needs the " + HeaderLength + " header")
			case in.binSize > int64(len(bin)):
				return badRequest(t.label() + ": binary_data_size " + strconv.FormatInt(in.binSize, 10) + " but only " + strconv.Itoa(len(bin)) + " bytes of binary data are left")
			}
			t.src, t.raw = srcRaw, bin[:in.binSize:in.binSize]
			bin = bin[in.binSize:]
		} else {
			t.src, t.json, t.stats = srcJSON, in.data, in.stats
		}
		ts = append(ts, t)
	}
	st.sc.tensors = ts
	if len(bin) > 0 {
		return badRequest(strconv.Itoa(len(bin)) + " bytes of binary data follow the last binary input (the binary_data_size values add up to less than the body)")
	}
	st.want = st.want[:0]
	for _, o := range st.hdr.outputs {
		st.want = append(st.want, wantOut{name: intern(o.name, nil), binary: o.binary})
	}
	if err := checkWanted(st.want, md); err != nil {
		return err
	}
	if err := assemble(ts, md, &st.sc, req); err != nil {
		return err
	}
	if st.hdr.hasID {
		req.ID = string(st.hdr.id)
	}
	req.Parameters = st.hdr.params
	return nil
}

// intern returns name as a string, reusing the metadata's string when it names a model input
// or matrix column (no allocation on the hot path).
func intern(name []byte, md *ModelMetadata) string {
	if md != nil {
		for i := range md.Inputs {
			if md.Inputs[i].Name == string(name) {
				return md.Inputs[i].Name
			}
		}
		for _, c := range md.Matrix {
			if c == string(name) {
				return c
			}
		}
	}
	return string(name)
}
