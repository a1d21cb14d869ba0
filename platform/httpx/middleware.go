package httpx

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	// body is the request's body; an error answered while some of it is unread says
	// Connection: close (the server drains it, then closes).
	body *trackedBody
	// err is the handler's error, for the request's log line.
	err error
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote && code >= 200 {
		r.status, r.wrote = code, true
		if code >= 400 && r.body.unread() {
			r.Header().Set("Connection", "close")
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ReadBody reads the whole request body, answering 413 when it exceeds the server's limit.
func ReadBody(r *http.Request) ([]byte, error) {
	var body []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= 64<<20 {
		// Read into one right-sized buffer instead of growing one step by step; a body longer
		// than it claims still hits the MaxBytesReader limit.
		body = make([]byte, n)
		var read int
		read, err = io.ReadFull(r.Body, body)
		body = body[:read]
		if err == nil {
			var extra [1]byte
			if m, _ := r.Body.Read(extra[:]); m > 0 {
				rest, rerr := io.ReadAll(r.Body)
				body, err = append(append(body, extra[0]), rest...), rerr
			}
		}
	} else {
		body, err = io.ReadAll(r.Body)
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, tooLargeError(tooLarge.Limit)
	}
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "bad_body", Message: "could not read the request body", Err: err}
	}
	return body, nil
}

// DecodeJSON reads the body as one JSON value into v, answering 400 with the reason when it
// is not valid.
func DecodeJSON(r *http.Request, v any) error {
	body, err := ReadBody(r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: "the body is not valid JSON for this request", Err: err}
	}
	return nil
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
