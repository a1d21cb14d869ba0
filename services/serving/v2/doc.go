// Package v2 serves a Backend over the KServe Open Inference Protocol, also called the V2
// inference protocol: REST with JSON, REST with the binary tensor data extension, and gRPC.
//
// The protocol is specified in
//
//   - REST: https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md
//     (also kserve/kserve docs/predict-api/v2/required_api.md);
//   - gRPC: https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/open_inference_grpc.proto,
//     KServe's grpc_predict_v2.proto (package inference, service GRPCInferenceService), committed
//     as pb/grpc_predict_v2.proto;
//   - the binary tensor data extension: Triton's
//     https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md.
//
// # Inputs become columns
//
// A Backend takes named columns of N rows. An input tensor of shape [N] or [N,1] is one column,
// named by the tensor. A tensor [N,F] with F == len(Matrix) > 1 (ModelMetadata.Matrix, also
// published as the metadata property "matrix") is split into the Matrix columns, in order; at
// most one such tensor per request, other column tensors may accompany it. Every tensor must
// have the same N ≥ 1; a column given twice is refused.
//
// Datatypes: BOOL, UINT8–64, INT8–64, FP16, BF16, FP32, FP64 become float64 numbers (BOOL 0/1,
// FP32/FP16/BF16 rounded to their type first, integers range-checked); BYTES become strings.
// FP16 and BF16 are taken as binary data only (REST extension, gRPC raw_input_contents), as
// Triton does: JSON numbers have no 16-bit form.
//
// In JSON, "data" may be flat or nested (row-major; only the element count is checked against
// the shape). JSON numbers cannot be NaN or infinite; for FP16/FP32/FP64 inputs the front end
// also reads the bare tokens NaN, Infinity and -Infinity (which Python's json module writes and
// Triton's parser reads), the strings "NaN", "Infinity", "-Infinity" (also "Inf", "-Inf") for
// strict JSON encoders, and null, all as missing (NaN) or infinite values. Outputs write
// non-finite values as those strings, so the response is always valid JSON.
//
// # Binary data
//
// REST (Triton's extension): with the Inference-Header-Content-Length header, the body is that
// many bytes of JSON followed by the binary data, little-endian and row-major, of every input
// that has parameters.binary_data_size, in input order (BYTES elements each a 4-byte length
// then the bytes; BOOL one byte). The sizes must account for the body exactly. Outputs are sent
// as binary when the request parameter binary_data_output is true or the output's own
// parameters.binary_data (or binary_data_output) says so, the output's setting winning; the
// answer is then application/octet-stream with its own Inference-Header-Content-Length, each
// binary output carrying parameters.binary_data_size. A raw binary request
// (Inference-Header-Content-Length: 0, no JSON) is refused.
//
// gRPC: raw_input_contents (one entry per input) or typed contents (fp32_contents, ...; the
// field of the input's datatype, no other). Outputs are typed contents unless binary_data_output
// or an output's binary_data bool_param asks for raw, or an output is FP16/BF16 (no typed
// field): then raw_output_contents holds every output, as the proto requires.
//
// # Bounds
//
// A REST body is read whole up to WithMaxBodyBytes (default 64 MiB; 413 past it). Nothing is
// allocated from a count the client declares until the bytes backing it have been received:
// JSON element counts are counted from the data, binary sizes are checked against the bytes
// left in the body, BYTES length prefixes against the bytes left in their tensor. Malformed input
// of any kind is an error, never a panic (FuzzDecodeJSON, FuzzDecodeBinary).
//
// # Statuses
//
// REST errors are {"error": "..."}: 400 for a malformed request, shape, datatype or value
// (naming the input), an unknown requested output, or a binary size that does not fit; 404 for
// an unknown model or version (ErrModelNotFound, ErrVersionNotFound) or route; 405 for a known
// route with another method; 413 for a body over the limit; 415 for a compressed body; 503 when
// the server, or the model, is not ready — health and model-ready answer 503 rather than
// Triton's 400, so probes and clients can tell "not yet" from "wrong"; a *Error from the backend
// keeps its status; anything else is 500 "internal error" (the error itself goes to
// WithErrorLog). gRPC maps the same statuses to InvalidArgument, NotFound, ResourceExhausted,
// Unavailable, Internal (and Canceled, DeadlineExceeded from the context).
package v2
