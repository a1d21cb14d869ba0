package v2

import (
	"context"
	"errors"
	"net/http"
)

// Backend is what the V2 front ends serve.
//
// Every method may be called from many goroutines at once. The front ends call Metadata before
// decoding an inference request (its Matrix says how a 2-D input is split), so Metadata should
// be cheap: a read of what the backend already holds.
type Backend interface {
	Live() bool
	Ready() bool // a model is loaded and warm
	// Metadata of a served model; version "" means the version served by default.
	// Errors: ErrModelNotFound, ErrVersionNotFound (wrapped is fine).
	Metadata(name, version string) (ModelMetadata, error)
	ModelReady(name, version string) (bool, error)
	// Infer scores req.Rows rows. Errors of type *Error carry their HTTP status; others are 500.
	//
	// req and everything it holds are the backend's to keep: the front ends share none of it
	// with a later request. ErrModelNotFound and ErrVersionNotFound are 404 as for Metadata;
	// context.Canceled is the client having gone away and context.DeadlineExceeded is 503.
	Infer(ctx context.Context, name, version string, req *Request) (*Response, error)
}

// TensorMetadata describes one input or output tensor; -1 in Shape is a variable dimension.
type TensorMetadata struct {
	Name     string
	Datatype string
	Shape    []int64
}

// ModelMetadata is a model's V2 metadata.
type ModelMetadata struct {
	Name     string
	Versions []string
	Platform string
	Inputs   []TensorMetadata
	Outputs  []TensorMetadata
	// Matrix lists, in order, the columns a single 2-D input tensor [N, len(Matrix)] maps to.
	Matrix []string
}

// Column is one named input column of N rows: numbers (any numeric/BOOL datatype converted to
// float64) or strings (BYTES).
//
// Datatype is the datatype the client sent. BOOL is 0 or 1; integers above 2^53 lose precision
// in float64; FP32 and FP16 values are rounded to their type before widening; NaN is a missing
// value.
type Column struct {
	Name     string
	Datatype string
	Numbers  []float64
	Strings  []string
}

// Request is one decoded inference request: Rows rows of named columns.
type Request struct {
	ID         string
	Rows       int
	Columns    []Column
	Parameters map[string]any
	Headers    http.Header // REST headers or gRPC metadata, for version pinning
}

// Response is the answer to a Request.
type Response struct {
	ModelName, ModelVersion, ID string
	Outputs                     []OutputTensor
	Parameters                  map[string]any
}

// OutputTensor is one output: FP64 holds the values of floating-point datatypes (FP64, FP32,
// FP16), INT64 those of integer and BOOL datatypes. The number of values is the product of Shape.
type OutputTensor struct {
	Name, Datatype string
	Shape          []int64
	FP64           []float64
	INT64          []int64
}

// Error is an error with its HTTP status (400 a bad request, 503 not ready, ...). The front ends
// send Msg to the client.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Sentinel errors of Backend.Metadata, ModelReady and Infer: 404, gRPC NotFound.
var (
	ErrModelNotFound   = errors.New("model not found")
	ErrVersionNotFound = errors.New("model version not found")
)
