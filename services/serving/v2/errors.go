package v2

import (
	"context"
	"errors"
	"net/http"
	"strconv"
)

// statusOf maps an error to its HTTP status, in one place for both front ends (gRPC codes are
// derived from it by grpcCode):
//
//   - ErrModelNotFound, ErrVersionNotFound: 404
//   - *Error: its Status (a Status outside 400–599 is a bug: 500)
//   - context.DeadlineExceeded: 503 (the backend ran out of time, as serving's own API answers)
//   - context.Canceled: 499 (the client went away; nobody reads the answer)
//   - a malformed backend output and anything else: 500
func statusOf(err error) int {
	var e *Error
	switch {
	case errors.Is(err, ErrModelNotFound), errors.Is(err, ErrVersionNotFound):
		return http.StatusNotFound
	case errors.As(err, &e):
		if e.Status >= 400 && e.Status <= 599 {
			return e.Status
		}
		return http.StatusInternalServerError
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return 499
	}
	return http.StatusInternalServerError
}

// messageOf is what the client is told: the error's text, a readable sentence for the bare
// sentinels, and never the internals of a 500.
func messageOf(err error, status int, model, version string) string {
	switch {
	case status == http.StatusInternalServerError:
		return "internal error"
	case err == ErrModelNotFound:
		return "model " + strconv.Quote(model) + " is not served"
	case err == ErrVersionNotFound:
		if version == "" {
			return "model " + strconv.Quote(model) + " has no default version"
		}
		return "model " + strconv.Quote(model) + " has no version " + strconv.Quote(version)
	case errors.Is(err, context.DeadlineExceeded) && !isTyped(err):
		return "the request's deadline passed before it was answered"
	case errors.Is(err, context.Canceled) && !isTyped(err):
		return "the request was cancelled"
	}
	return err.Error()
}

func isTyped(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
