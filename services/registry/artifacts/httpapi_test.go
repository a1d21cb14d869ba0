package artifacts_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/registry/artifacts"
)

const (
	readToken  = "reader"
	writeToken = "writer"
)

// serve mounts the artifact API of e's store on an httpx.Server (the registry's runtime,
// auth and body limit included) behind a real HTTP listener.
func serve(t *testing.T, e env, maxBody int64) string {
	t.Helper()
	srv, err := httpx.NewServer(httpx.Config{Addr: "127.0.0.1:0", MaxBodyBytes: maxBody, ShutdownTimeout: time.Second},
		httpx.AuthConfig{Tokens: readToken + ":read;" + writeToken + ":read,write"}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	artifacts.Register(srv, e.store, zap.NewNop())
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts.URL + artifacts.APIPath
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func call(t *testing.T, method, url, token string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// mlflowError checks r is an MLflow error with status and code and returns its message.
func (r response) mlflowError(t *testing.T, status int, code string) string {
	t.Helper()
	var e struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	if r.status != status || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s %q, want %d with an MLflow JSON error", r.status, r.header.Get("Content-Type"), r.body, status)
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.ErrorCode != code || e.Message == "" {
		t.Fatalf("error body %q, want error_code %s and a message", r.body, code)
	}
	return e.Message
}

// onlyReader hides bytes.Reader's length, so the client sends the body chunked.
type onlyReader struct{ io.Reader }

func TestHTTPArtifactAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, artifacts.Limits{MaxObjectBytes: 256 << 10, ChunkBytes: 32 << 10})
	api := serve(t, e, 1<<20)
	model := randomBytes(t, 200<<10)

	r := call(t, http.MethodPut, api+"/1/r/artifacts/model/model.pkl", writeToken, bytes.NewReader(model))
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "{}" {
		t.Fatalf("put: %d %q", r.status, r.body)
	}
	call(t, http.MethodPut, api+"/1/r/artifacts/metrics.json", writeToken, strings.NewReader(`{"auc":0.9}`))
	call(t, http.MethodPut, api+"/1/r/artifacts/with%20space.txt", writeToken, strings.NewReader("x"))

	r = call(t, http.MethodGet, api+"/1/r/artifacts/model/model.pkl", readToken, nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, model) {
		t.Fatalf("get: %d, %d bytes", r.status, len(r.body))
	}
	if r.header.Get("Content-Type") != "application/octet-stream" || r.header.Get("Content-Length") != strconv.Itoa(len(model)) {
		t.Fatalf("get headers: %v", r.header)
	}
	if r = call(t, http.MethodGet, api+"/1/r/artifacts/with%20space.txt", readToken, nil); string(r.body) != "x" {
		t.Fatalf("get of an escaped path: %d %q", r.status, r.body)
	}

	r = call(t, http.MethodGet, api+"?path=1/r/artifacts", readToken, nil)
	want := `{"files":[{"path":"metrics.json","is_dir":false,"file_size":11},{"path":"model","is_dir":true},` +
		`{"path":"with space.txt","is_dir":false,"file_size":1}]}`
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != want {
		t.Fatalf("list:\n got %d %s\nwant %s", r.status, r.body, want)
	}
	if r = call(t, http.MethodGet, api, readToken, nil); strings.TrimSpace(string(r.body)) != `{"files":[{"path":"1","is_dir":true}]}` {
		t.Fatalf("list of the root: %d %s", r.status, r.body)
	}
	if r = call(t, http.MethodGet, api+"?path=2/none", readToken, nil); r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "{}" {
		t.Fatalf("list of an unknown dir: %d %s, want 200 {}", r.status, r.body)
	}

	call(t, http.MethodGet, api+"/1/r/artifacts/nope", readToken, nil).mlflowError(t, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	call(t, http.MethodGet, api+"/1/r/artifacts/model", readToken, nil).mlflowError(t, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	call(t, http.MethodPut, api+"/a%2F..%2Fb", writeToken, strings.NewReader("x")).mlflowError(t, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
	call(t, http.MethodGet, api+"?path=../etc", readToken, nil).mlflowError(t, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")

	// Scopes: reading needs read, writing needs write.
	if r = call(t, http.MethodPut, api+"/1/r/artifacts/x", readToken, strings.NewReader("x")); r.status != http.StatusForbidden {
		t.Fatalf("put with a read-only token: %d", r.status)
	}
	if r = call(t, http.MethodDelete, api+"/1/r/artifacts/model", readToken, nil); r.status != http.StatusForbidden {
		t.Fatalf("delete with a read-only token: %d", r.status)
	}

	// Delete a directory; deleting it again succeeds as in MLflow.
	for range 2 {
		if r = call(t, http.MethodDelete, api+"/1/r/artifacts/model", writeToken, nil); r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "{}" {
			t.Fatalf("delete: %d %q", r.status, r.body)
		}
	}
	call(t, http.MethodGet, api+"/1/r/artifacts/model/model.pkl", readToken, nil).mlflowError(t, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
}

// Over MaxObjectBytes: 413 INVALID_PARAMETER_VALUE naming the limit, whether the client
// announced the length or streamed chunked, and no object; over the server's body limit
// (httpx's MaxBytesReader): 413 naming that limit.
func TestHTTPTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, artifacts.Limits{MaxObjectBytes: 64 << 10, ChunkBytes: 16 << 10})
	api := serve(t, e, 1<<20)
	big := randomBytes(t, 64<<10+1)

	msg := call(t, http.MethodPut, api+"/1/r/artifacts/big.bin", writeToken, bytes.NewReader(big)).
		mlflowError(t, http.StatusRequestEntityTooLarge, "INVALID_PARAMETER_VALUE")
	if !strings.Contains(msg, "the limit is 65536 bytes") {
		t.Fatalf("message %q does not name the limit", msg)
	}
	msg = call(t, http.MethodPut, api+"/1/r/artifacts/big.bin", writeToken, onlyReader{bytes.NewReader(big)}).
		mlflowError(t, http.StatusRequestEntityTooLarge, "INVALID_PARAMETER_VALUE")
	if !strings.Contains(msg, "the limit is 65536 bytes") {
		t.Fatalf("message %q does not name the limit", msg)
	}
	call(t, http.MethodGet, api+"/1/r/artifacts/big.bin", readToken, nil).mlflowError(t, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	if subjects := e.chunkSubjects(t); len(subjects) != 0 {
		t.Fatalf("chunks left by refused uploads: %v", subjects)
	}

	small := serve(t, e, 10<<10)
	msg = call(t, http.MethodPut, small+"/1/r/artifacts/mid.bin", writeToken, onlyReader{bytes.NewReader(big[:20<<10])}).
		mlflowError(t, http.StatusRequestEntityTooLarge, "INVALID_PARAMETER_VALUE")
	if !strings.Contains(msg, "server's limit of 10240 bytes") {
		t.Fatalf("message %q does not name the server's body limit", msg)
	}
	call(t, http.MethodGet, api+"/1/r/artifacts/mid.bin", readToken, nil).mlflowError(t, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
}

// A corrupted chunk is answered with 500 INTERNAL_ERROR naming the artifact and the sha256
// mismatch — not with a 200 and bad or truncated bytes.
func TestHTTPCorruptArtifact(t *testing.T) {
	t.Parallel()
	e := newEnv(t, artifacts.Limits{ChunkBytes: 16 << 10, SpoolMemoryBytes: 32 << 10, SpoolDir: t.TempDir()})
	api := serve(t, e, 1<<20)
	const path = "3/abc/artifacts/model.bin"
	data := randomBytes(t, 100<<10)
	e.put(t, path, data)
	var stored []byte
	e.rewriteChunks(t, path, flipByte(0, &stored))

	r := call(t, http.MethodGet, api+"/"+path, readToken, nil)
	msg := r.mlflowError(t, http.StatusInternalServerError, "INTERNAL_ERROR")
	if !strings.Contains(msg, path) || !strings.Contains(msg, "sha256 mismatch: stored "+hexSum(data)+", read "+hexSum(stored)) {
		t.Fatalf("message %q does not name the artifact and the mismatch", msg)
	}
	if len(r.body) > 1024 || bytes.Contains(r.body, stored[:64]) || r.header.Get("Content-Disposition") != "" {
		t.Fatalf("artifact bytes or headers were sent with the error: %d bytes, %v", len(r.body), r.header)
	}
}
