package v2

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/flywheel-ml/flywheel/services/serving/v2/pb"
)

// NewGRPC returns a gRPC server serving GRPCInferenceService (grpc_predict_v2.proto) from b,
// receiving messages up to the body limit (WithMaxBodyBytes, default 64 MiB; gRPC's own default
// is 4 MiB). Its caller starts it (Serve) and stops it (GracefulStop).
func NewGRPC(b Backend, opts ...Option) *grpc.Server {
	o := buildOptions(opts)
	s := grpc.NewServer(grpc.MaxRecvMsgSize(int(min(o.maxBody, math.MaxInt32))))
	Register(s, b, opts...)
	return s
}

// Register registers GRPCInferenceService on s; the server's own options (message size
// limits, interceptors) are the caller's.
func Register(s grpc.ServiceRegistrar, b Backend, opts ...Option) {
	pb.RegisterGRPCInferenceServiceServer(s, &grpcServer{b: b, o: buildOptions(opts)})
}

type grpcServer struct {
	pb.UnimplementedGRPCInferenceServiceServer
	b Backend
	o options
}

// grpcCode maps the HTTP status statusOf gave to the gRPC code a V2 client expects.
func grpcCode(status int) codes.Code {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusUnsupportedMediaType:
		return codes.InvalidArgument
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusConflict:
		return codes.Aborted
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case 499:
		return codes.Canceled
	case http.StatusNotImplemented:
		return codes.Unimplemented
	}
	if status >= 400 && status < 500 {
		return codes.FailedPrecondition
	}
	return codes.Internal
}

func (g *grpcServer) fail(ctx context.Context, op string, err error, model, version string) error {
	st := statusOf(err)
	if g.o.onError != nil {
		g.o.onError(ctx, op, st, err)
	}
	code := grpcCode(st)
	switch {
	case errors.Is(err, context.DeadlineExceeded) && !isTyped(err):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled) && !isTyped(err):
		code = codes.Canceled
	}
	return status.Error(code, messageOf(err, st, model, version))
}

func (g *grpcServer) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: g.b.Live()}, nil
}

func (g *grpcServer) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: g.b.Ready()}, nil
}

func (g *grpcServer) ModelReady(ctx context.Context, r *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	ok, err := g.b.ModelReady(r.GetName(), r.GetVersion())
	if err != nil {
		return nil, g.fail(ctx, pb.GRPCInferenceService_ModelReady_FullMethodName, err, r.GetName(), r.GetVersion())
	}
	return &pb.ModelReadyResponse{Ready: ok}, nil
}

func (g *grpcServer) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	return &pb.ServerMetadataResponse{Name: ServerName, Version: g.o.version, Extensions: slices.Clone(Extensions)}, nil
}

func (g *grpcServer) ModelMetadata(ctx context.Context, r *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	md, err := g.b.Metadata(r.GetName(), r.GetVersion())
	if err != nil {
		return nil, g.fail(ctx, pb.GRPCInferenceService_ModelMetadata_FullMethodName, err, r.GetName(), r.GetVersion())
	}
	conv := func(ts []TensorMetadata) []*pb.ModelMetadataResponse_TensorMetadata {
		out := make([]*pb.ModelMetadataResponse_TensorMetadata, len(ts))
		for i, t := range ts {
			out[i] = &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
		}
		return out
	}
	return &pb.ModelMetadataResponse{
		Name: md.Name, Versions: md.Versions, Platform: md.Platform,
		Inputs: conv(md.Inputs), Outputs: conv(md.Outputs), Properties: matrixProperties(&md),
	}, nil
}

// headersOf turns incoming gRPC metadata into canonical HTTP headers (x-flywheel-model-version
// becomes X-Flywheel-Model-Version), so the backend reads pins the same way for both front ends.
func headersOf(ctx context.Context) http.Header {
	md, _ := metadata.FromIncomingContext(ctx)
	h := make(http.Header, len(md))
	for k, vs := range md {
		if strings.HasPrefix(k, ":") {
			continue
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		h[ck] = append(h[ck], vs...)
	}
	return h
}

// paramsOf converts InferParameters to Go values: bool, int64, string, float64, uint64.
func paramsOf(ps map[string]*pb.InferParameter) map[string]any {
	if len(ps) == 0 {
		return nil
	}
	out := make(map[string]any, len(ps))
	for k, p := range ps {
		switch v := p.GetParameterChoice().(type) {
		case *pb.InferParameter_BoolParam:
			out[k] = v.BoolParam
		case *pb.InferParameter_Int64Param:
			out[k] = v.Int64Param
		case *pb.InferParameter_StringParam:
			out[k] = v.StringParam
		case *pb.InferParameter_DoubleParam:
			out[k] = v.DoubleParam
		case *pb.InferParameter_Uint64Param:
			out[k] = v.Uint64Param
		}
	}
	return out
}

func toParam(v any) *pb.InferParameter {
	switch v := v.(type) {
	case bool:
		return &pb.InferParameter{ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: v}}
	case string:
		return &pb.InferParameter{ParameterChoice: &pb.InferParameter_StringParam{StringParam: v}}
	case int:
		return &pb.InferParameter{ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: int64(v)}}
	case int32:
		return &pb.InferParameter{ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: int64(v)}}
	case int64:
		return &pb.InferParameter{ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: v}}
	case uint32:
		return &pb.InferParameter{ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: uint64(v)}}
	case uint64:
		return &pb.InferParameter{ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: v}}
	case float32:
		return &pb.InferParameter{ParameterChoice: &pb.InferParameter_DoubleParam{DoubleParam: float64(v)}}
	case float64:
		return &pb.InferParameter{ParameterChoice: &pb.InferParameter_DoubleParam{DoubleParam: v}}
	}
	return nil // not representable: left out
}

// wantsBinary reads a bool_param parameter.
func wantsBinary(ps map[string]*pb.InferParameter, key string) (val, set bool, err error) {
	p, ok := ps[key]
	if !ok {
		return false, false, nil
	}
	v, ok := p.GetParameterChoice().(*pb.InferParameter_BoolParam)
	if !ok {
		return false, false, badRequest("parameter " + key + " must be a bool_param")
	}
	return v.BoolParam, true, nil
}

func (g *grpcServer) ModelInfer(ctx context.Context, r *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	const op = pb.GRPCInferenceService_ModelInfer_FullMethodName
	name, version := r.GetModelName(), r.GetModelVersion()
	md, err := g.b.Metadata(name, version)
	if err != nil {
		return nil, g.fail(ctx, op, err, name, version)
	}
	st := getState()
	defer st.release()
	req := &Request{ID: r.GetId(), Headers: headersOf(ctx)}
	raw, err := st.decodeGRPC(r, &md, req)
	if err != nil {
		return nil, g.fail(ctx, op, err, name, version)
	}
	resp, err := g.b.Infer(ctx, name, version, req)
	if err == nil && resp == nil {
		err = errors.New("backend returned no response and no error")
	}
	if err != nil {
		return nil, g.fail(ctx, op, err, name, version)
	}
	sel, err := selectOutputs(st.sel, resp.Outputs, st.want, len(r.GetOutputs()) > 0, raw)
	if err != nil {
		return nil, g.fail(ctx, op, err, name, version)
	}
	st.sel = sel
	out := &pb.ModelInferResponse{ModelName: resp.ModelName, ModelVersion: resp.ModelVersion, Id: resp.ID}
	if out.ModelName == "" {
		out.ModelName = name
	}
	if out.Id == "" {
		out.Id = req.ID
	}
	if len(resp.Parameters) > 0 {
		out.Parameters = make(map[string]*pb.InferParameter, len(resp.Parameters))
		for k, v := range resp.Parameters {
			if p := toParam(v); p != nil {
				out.Parameters[k] = p
			}
		}
	}
	// raw_output_contents, when used, must hold every output (the proto's rule), so one
	// output asking for binary data makes them all raw; so does an FP16 or BF16 output, which
	// has no typed field.
	raw = anyBinary(sel) || slices.ContainsFunc(sel, func(s selOut) bool { return s.dt == dtFP16 || s.dt == dtBF16 })
	out.Outputs = make([]*pb.ModelInferResponse_InferOutputTensor, len(sel))
	if raw {
		out.RawOutputContents = make([][]byte, len(sel))
	}
	for i := range sel {
		s := &sel[i]
		o := &pb.ModelInferResponse_InferOutputTensor{Name: s.t.Name, Datatype: s.dt.String(), Shape: s.t.Shape}
		if raw {
			out.RawOutputContents[i] = s.appendRaw(make([]byte, 0, s.byteSize()))
		} else {
			o.Contents = typedContents(s)
		}
		out.Outputs[i] = o
	}
	return out, nil
}

// decodeGRPC turns the request's tensors into req's columns and records the requested outputs;
// it reports whether the request asks for binary (raw) outputs by default.
func (st *state) decodeGRPC(r *pb.ModelInferRequest, md *ModelMetadata, req *Request) (bool, error) {
	inputs := r.GetInputs()
	raws := r.GetRawInputContents()
	if len(raws) > 0 && len(raws) != len(inputs) {
		return false, badRequest("raw_input_contents has " + strconv.Itoa(len(raws)) + " entries for " + strconv.Itoa(len(inputs)) + " inputs; it must hold one per input, in order")
	}
	ts := st.sc.tensors[:0]
	for i, in := range inputs {
		t := tensor{name: in.GetName(), dt: parseDtypeString(in.GetDatatype()), shape: in.GetShape()}
		if t.dt == dtInvalid {
			return false, badRequest(t.label() + ": datatype " + strconv.Quote(in.GetDatatype()) + " is not a V2 datatype")
		}
		if len(raws) > 0 {
			if in.GetContents() != nil {
				return false, badRequest(t.label() + ": contents are set although raw_input_contents is used; use one or the other")
			}
			t.src, t.raw = srcRaw, raws[i]
		} else {
			if in.GetContents() == nil {
				return false, badRequest(t.label() + ": no contents (nor raw_input_contents)")
			}
			t.src, t.typed = srcTyped, in.GetContents()
		}
		ts = append(ts, t)
	}
	st.sc.tensors = ts
	binary, _, err := wantsBinary(r.GetParameters(), "binary_data_output")
	if err != nil {
		return false, err
	}
	st.want = st.want[:0]
	for _, o := range r.GetOutputs() {
		w := wantOut{name: o.GetName(), binary: -1}
		v, set, err := wantsBinary(o.GetParameters(), "binary_data")
		if err != nil {
			return false, err
		}
		if set {
			w.binary = 0
			if v {
				w.binary = 1
			}
		}
		st.want = append(st.want, w)
	}
	if err := checkWanted(st.want, md); err != nil {
		return false, err
	}
	if err := assemble(ts, md, &st.sc, req); err != nil {
		return false, err
	}
	if ps := paramsOf(r.GetParameters()); ps != nil {
		delete(ps, "binary_data_output")
		if len(ps) > 0 {
			req.Parameters = ps
		}
	}
	return binary, nil
}

// typedContents puts an output's values in the InferTensorContents field of its datatype.
func typedContents(s *selOut) *pb.InferTensorContents {
	c := &pb.InferTensorContents{}
	switch s.dt {
	case dtFP64:
		c.Fp64Contents = slices.Clone(s.t.FP64)
	case dtFP32:
		c.Fp32Contents = make([]float32, len(s.t.FP64))
		for i, v := range s.t.FP64 {
			c.Fp32Contents[i] = float32(v)
		}
	case dtINT64:
		c.Int64Contents = slices.Clone(s.t.INT64)
	case dtINT8, dtINT16, dtINT32:
		c.IntContents = make([]int32, len(s.t.INT64))
		for i, v := range s.t.INT64 {
			c.IntContents[i] = int32(v)
		}
	case dtUINT8, dtUINT16, dtUINT32:
		c.UintContents = make([]uint32, len(s.t.INT64))
		for i, v := range s.t.INT64 {
			c.UintContents[i] = uint32(v)
		}
	case dtUINT64:
		c.Uint64Contents = make([]uint64, len(s.t.INT64))
		for i, v := range s.t.INT64 {
			c.Uint64Contents[i] = uint64(v)
		}
	case dtBOOL:
		c.BoolContents = make([]bool, len(s.t.INT64))
		for i, v := range s.t.INT64 {
			c.BoolContents[i] = v != 0
		}
	}
	return c
}
