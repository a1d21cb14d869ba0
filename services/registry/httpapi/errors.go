package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/registry/runindex"
	"github.com/flywheel-ml/flywheel/services/registry/search"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

// MLflow's error codes.
const (
	codeNotFound      = "RESOURCE_DOES_NOT_EXIST"
	codeAlreadyExists = "RESOURCE_ALREADY_EXISTS"
	codeInvalid       = "INVALID_PARAMETER_VALUE"
	codeUnavailable   = "TEMPORARILY_UNAVAILABLE"
	codeInternal      = "INTERNAL_ERROR"
	codeUnauth        = "UNAUTHENTICATED"
	codeDenied        = "PERMISSION_DENIED"
)

// mlflowError is an error with its MLflow code and HTTP status.
type mlflowError struct {
	Status  int    `json:"-"`
	Code    string `json:"error_code"`
	Message string `json:"message"`
}

func (e *mlflowError) Error() string { return e.Code + ": " + e.Message }

func invalid(format string, args ...any) error {
	return &mlflowError{Status: http.StatusBadRequest, Code: codeInvalid, Message: fmt.Sprintf(format, args...)}
}

// toMLflow maps an error to MLflow's code and status; internal errors keep their details
// out of the response (they are logged).
func toMLflow(err error) (*mlflowError, bool) {
	var me *mlflowError
	var he *httpx.Error
	switch {
	case errors.As(err, &me):
		return me, false
	case errors.Is(err, store.ErrNotFound):
		return &mlflowError{Status: http.StatusNotFound, Code: codeNotFound, Message: trimSentinel(err, store.ErrNotFound)}, false
	case errors.Is(err, store.ErrAlreadyExists):
		return &mlflowError{Status: http.StatusBadRequest, Code: codeAlreadyExists, Message: trimSentinel(err, store.ErrAlreadyExists)}, false
	case errors.Is(err, store.ErrInvalid), errors.Is(err, search.ErrInvalid):
		return &mlflowError{Status: http.StatusBadRequest, Code: codeInvalid, Message: err.Error()}, false
	case errors.Is(err, runindex.ErrBehind):
		return &mlflowError{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Message: err.Error()}, true
	case errors.As(err, &he):
		code := codeInvalid
		switch he.Status {
		case http.StatusUnauthorized:
			code = codeUnauth
		case http.StatusForbidden:
			code = codeDenied
		case http.StatusNotFound:
			code = codeNotFound
		}
		if he.Status >= 500 {
			return &mlflowError{Status: he.Status, Code: codeInternal, Message: he.Message}, true
		}
		return &mlflowError{Status: he.Status, Code: code, Message: he.Error()}, false
	default:
		return &mlflowError{Status: http.StatusInternalServerError, Code: codeInternal, Message: "internal error"}, true
	}
}

// trimSentinel drops the ": not found" suffix the store adds for errors.Is, so messages read
// like MLflow's.
func trimSentinel(err, sentinel error) string {
	msg, suffix := err.Error(), ": "+sentinel.Error()
	if len(msg) > len(suffix) && msg[len(msg)-len(suffix):] == suffix {
		return msg[:len(msg)-len(suffix)]
	}
	return msg
}
