// Package httpapi is ingest's HTTP surface: POST /v1/streams/{stream}/events and the stream
// listing.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
	"github.com/flywheel-ml/flywheel/services/ingest/pipeline"
	"github.com/flywheel-ml/flywheel/services/ingest/validate"
)

// Ingester is the pipeline as the API uses it.
type Ingester interface {
	Ingest(ctx context.Context, s *catalog.Stream, transport string, records []pipeline.Record) (pipeline.Result, error)
}

// API holds the handlers.
type API struct {
	catalog  *catalog.Catalog
	ingester Ingester
	maxItems int
}

// New returns the API; maxItems caps events per request.
func New(cat *catalog.Catalog, in Ingester, maxItems int) *API {
	return &API{catalog: cat, ingester: in, maxItems: maxItems}
}

// Register adds the routes to srv.
func (a *API) Register(srv *httpx.Server) {
	srv.Handle("POST /v1/streams/{stream}/events", httpx.ScopeIngest, a.postEvents)
	srv.Handle("GET /v1/streams", httpx.ScopeRead, a.listStreams)
	srv.Handle("GET /v1/streams/{stream}", httpx.ScopeRead, a.getStream)
}

func (a *API) stream(r *http.Request) (*catalog.Stream, error) {
	name := r.PathValue("stream")
	s, ok := a.catalog.Get(name)
	if !ok {
		return nil, httpx.NotFound("unknown_stream", "stream \""+name+"\" is not in the catalog; known streams: "+strings.Join(a.catalog.Names(), ", "))
	}
	return s, nil
}

var ndjsonTypes = map[string]bool{"application/x-ndjson": true, "application/ndjson": true, "application/jsonl": true,
	"application/x-jsonlines": true, "application/jsonlines": true}

func (a *API) postEvents(w http.ResponseWriter, r *http.Request) error {
	s, err := a.stream(r)
	if err != nil {
		return err
	}
	body, err := httpx.ReadBody(r)
	if err != nil {
		return err
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	items, err := validate.Split(body, ndjsonTypes[mediaType], a.maxItems)
	switch {
	case errors.Is(err, validate.ErrTooMany):
		return &httpx.Error{Status: http.StatusRequestEntityTooLarge, Code: "too_many_events", Message: err.Error()}
	case errors.Is(err, validate.ErrEmpty):
		return httpx.BadRequest("empty_body", "the body is empty; send a JSON object, an array of objects, or NDJSON")
	case err != nil:
		return httpx.BadRequest("invalid_body", err.Error())
	}
	records := make([]pipeline.Record, len(items))
	for i, it := range items {
		idx := it.Index
		records[i] = pipeline.Record{Raw: it.Raw, Source: schemas.DLQSource{Transport: "http", Index: &idx}}
	}
	res, err := a.ingester.Ingest(r.Context(), s, "http", records)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		return httpx.Unavailable("events could not be written; nothing of this request may be assumed accepted, retry it", err)
	}
	if res.Errors == nil {
		res.Errors = []pipeline.Rejection{}
	}
	if len(records) == 1 && len(res.Errors) == 1 && res.Errors[0].Code == pipeline.CodeEventTooLarge {
		// One event that can never fit: a clear 4xx, not a 200 the client might overlook
		// (its dead letter, truncated to fit, is on dlq.<stream> like any reject). In a batch
		// it is one rejection beside the accepted events, as for any other reason.
		return &httpx.Error{Status: http.StatusRequestEntityTooLarge, Code: pipeline.CodeEventTooLarge,
			Message: strings.TrimPrefix(res.Errors[0].Reasons[0], "/: ")}
	}
	httpx.WriteJSON(w, http.StatusOK, res)
	return nil
}

// StreamInfo describes a stream in listings.
type StreamInfo struct {
	Name          string            `json:"name"`
	SchemaVersion int               `json:"schema_version"`
	Fingerprint   string            `json:"fingerprint"`
	EventID       catalog.EventID   `json:"event_id"`
	Entity        string            `json:"entity"`
	EventTime     string            `json:"event_time"`
	Topics        map[string]string `json:"topics"`
	Schema        json.RawMessage   `json:"schema,omitempty"`
}

func info(s *catalog.Stream) StreamInfo {
	return StreamInfo{Name: s.Name, SchemaVersion: s.Meta.Version, Fingerprint: s.Fingerprint, EventID: s.Meta.EventID,
		Entity: s.Meta.Entity, EventTime: s.Meta.EventTime,
		Topics: map[string]string{"raw": schemas.RawTopic(s.Name), "events": schemas.EventsTopic(s.Name), "dlq": schemas.DLQTopic(s.Name)}}
}

func (a *API) listStreams(w http.ResponseWriter, _ *http.Request) error {
	out := []StreamInfo{}
	for _, s := range a.catalog.Streams() {
		out = append(out, info(s))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"streams": out})
	return nil
}

func (a *API) getStream(w http.ResponseWriter, r *http.Request) error {
	s, err := a.stream(r)
	if err != nil {
		return err
	}
	i := info(s)
	i.Schema = s.Raw
	httpx.WriteJSON(w, http.StatusOK, i)
	return nil
}
