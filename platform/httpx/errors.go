package httpx

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Error is an error with the HTTP status and machine-readable code it maps to. Handlers
// return or wrap one; WriteError turns it into {"error":{"code":"...","message":"..."}}.
type Error struct {
	Status  int
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf-style constructors for the statuses handlers use.
func BadRequest(code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: msg}
}
func NotFound(code, msg string) *Error {
	return &Error{Status: http.StatusNotFound, Code: code, Message: msg}
}
func Conflict(code, msg string) *Error {
	return &Error{Status: http.StatusConflict, Code: code, Message: msg}
}
func Unavailable(msg string, err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: msg, Err: err}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteJSON writes v as JSON with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError maps err to its status and JSON body. Errors that are not an *Error become a
// 500 whose message hides internals; the caller's middleware logs the full error.
func WriteError(w http.ResponseWriter, err error) {
	he := asError(err)
	if he == nil {
		he = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	msg := he.Message
	if he.Err != nil && he.Status < 500 {
		msg = he.Error()
	}
	WriteJSON(w, he.Status, errorBody{Error: errorDetail{Code: he.Code, Message: msg}})
}

// asError is the *Error err maps to: its own, or 413 body_too_large for a body that hit an
// http.MaxBytesReader (a handler reading r.Body itself); nil for anything else.
func asError(err error) *Error {
	var he *Error
	if errors.As(err, &he) {
		return he
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return tooLargeError(tooLarge.Limit)
	}
	return nil
}

func tooLargeError(limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
		Message: "request body exceeds the limit of " + itoa(limit) + " bytes"}
}
