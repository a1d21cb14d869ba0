package v2_test

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	v2 "github.com/flywheel-ml/flywheel/services/serving/v2"
	"github.com/flywheel-ml/flywheel/services/serving/v2/pb"
)

// grpcClient serves b on a real loopback listener and returns a client of it.
func grpcClient(t *testing.T, b v2.Backend) pb.GRPCInferenceServiceClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := v2.NewGRPC(b, v2.WithServerVersion("9.9"))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewGRPCInferenceServiceClient(conn)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || (msg != "" && st.Message() != msg) {
		t.Errorf("%s: %v, want %v %q", what, err, code, msg)
	}
}

func TestGRPCHealthAndMetadata(t *testing.T) {
	t.Parallel()
	c := grpcClient(t, &fake{})
	ctx := ctxT(t)
	if r, err := c.ServerLive(ctx, &pb.ServerLiveRequest{}); err != nil || !r.Live {
		t.Errorf("live %v %v", r, err)
	}
	if r, err := c.ServerReady(ctx, &pb.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Errorf("ready %v %v", r, err)
	}
	if r, err := grpcClient(t, &fake{notReady: true}).ServerReady(ctx, &pb.ServerReadyRequest{}); err != nil || r.Ready {
		t.Errorf("not ready %v %v", r, err)
	}
	sm, err := c.ServerMetadata(ctx, &pb.ServerMetadataRequest{})
	if err != nil || sm.Name != "flywheel" || sm.Version != "9.9" || len(sm.Extensions) != 1 || sm.Extensions[0] != "binary_tensor_data" {
		t.Errorf("server metadata %v %v", sm, err)
	}
	md, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "fraud"})
	if err != nil || md.Name != "fraud" || len(md.Versions) != 2 || len(md.Inputs) != 5 || md.Inputs[3].Datatype != "BYTES" ||
		md.Outputs[1].Name != "label" || md.Properties["matrix"] != "amount,txn_count_1h,amount_avg_24h" {
		t.Errorf("model metadata %v %v", md, err)
	}
	_, err = c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "nope"})
	wantCode(t, "unknown model metadata", err, codes.NotFound, `model "nope" is not served`)
	_, err = c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "fraud", Version: "5"})
	wantCode(t, "unknown version metadata", err, codes.NotFound, `model "fraud" has no version "5"`)

	if r, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "fraud", Version: "1"}); err != nil || !r.Ready {
		t.Errorf("model ready %v %v", r, err)
	}
	if r, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "cold"}); err != nil || r.Ready {
		t.Errorf("cold ready %v %v", r, err)
	}
	_, err = c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "nope"})
	wantCode(t, "unknown model ready", err, codes.NotFound, "")
}

func typedRequest() *pb.ModelInferRequest {
	return &pb.ModelInferRequest{
		ModelName: "fraud", Id: "g-1",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{
			{Name: "amount", Datatype: "FP64", Shape: []int64{2}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{912.5, 3}}},
			{Name: "txn_count_1h", Datatype: "INT32", Shape: []int64{2, 1}, Contents: &pb.InferTensorContents{IntContents: []int32{3, -1}}},
			{Name: "amount_avg_24h", Datatype: "FP32", Shape: []int64{2}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{40.25, 0.5}}},
			{Name: "merchant_category", Datatype: "BYTES", Shape: []int64{2}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte("electronics"), []byte("grocery")}}},
			{Name: "flag", Datatype: "BOOL", Shape: []int64{2}, Contents: &pb.InferTensorContents{BoolContents: []bool{true, false}}},
		},
	}
}

func TestGRPCInferTyped(t *testing.T) {
	t.Parallel()
	f := &fake{}
	c := grpcClient(t, f)
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "x-flywheel-model-version", "challenger")
	r, err := c.ModelInfer(ctx, typedRequest())
	if err != nil {
		t.Fatal(err)
	}
	if r.ModelName != "fraud" || r.ModelVersion != "2" || r.Id != "g-1" || len(r.Outputs) != 2 || len(r.RawOutputContents) != 0 {
		t.Fatalf("response %v", r)
	}
	score, label := r.Outputs[0], r.Outputs[1]
	if score.Name != "score" || score.Datatype != "FP64" || !proto.Equal(score.Contents, &pb.InferTensorContents{Fp64Contents: []float64{967.75, 9.5}}) ||
		len(score.Shape) != 2 || score.Shape[0] != 2 {
		t.Errorf("score %v", score)
	}
	if label.Datatype != "INT64" || !proto.Equal(label.Contents, &pb.InferTensorContents{Int64Contents: []int64{1, 0}}) {
		t.Errorf("label %v", label)
	}
	if p := r.Parameters["rows"]; p.GetInt64Param() != 2 {
		t.Errorf("parameters %v", r.Parameters)
	}
	req := f.lastRequest()
	if req.Headers.Get("X-Flywheel-Model-Version") != "challenger" || req.ID != "g-1" || req.Rows != 2 {
		t.Errorf("request %+v", req)
	}
	if c := req.Columns[3]; c.Strings[1] != "grocery" {
		t.Errorf("bytes column %+v", c)
	}
}

func TestGRPCInferRaw(t *testing.T) {
	t.Parallel()
	f := &fake{}
	c := grpcClient(t, f)
	ctx := ctxT(t)
	typed, err := c.ModelInfer(ctx, typedRequest())
	if err != nil {
		t.Fatal(err)
	}
	// The same request with raw_input_contents, and raw outputs asked for.
	var i32 []byte
	for _, v := range []int32{3, -1} {
		i32 = binary.LittleEndian.AppendUint32(i32, uint32(v))
	}
	raw := typedRequest()
	for _, in := range raw.Inputs {
		in.Contents = nil
	}
	raw.RawInputContents = [][]byte{le64(912.5, 3), i32, le32f(40.25, 0.5), bytesElems("electronics", "grocery"), {1, 0}}
	raw.Parameters = map[string]*pb.InferParameter{"binary_data_output": {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: true}}}
	r, err := c.ModelInfer(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.RawOutputContents) != 2 || r.Outputs[0].Contents != nil {
		t.Fatalf("raw response %v", r)
	}
	for i, o := range typed.Outputs {
		b := r.RawOutputContents[i]
		for j := range 2 {
			v := binary.LittleEndian.Uint64(b[8*j:])
			switch o.Name {
			case "score":
				if math.Float64frombits(v) != o.Contents.Fp64Contents[j] {
					t.Errorf("score[%d] raw %v typed %v", j, math.Float64frombits(v), o.Contents.Fp64Contents[j])
				}
			case "label":
				if int64(v) != o.Contents.Int64Contents[j] {
					t.Errorf("label[%d] raw %v typed %v", j, int64(v), o.Contents.Int64Contents[j])
				}
			}
		}
	}
	if f.lastRequest().Parameters != nil {
		t.Errorf("binary_data_output is the front end's: %v", f.lastRequest().Parameters)
	}

	// The matrix, raw FP32, one requested output as binary: raw_output_contents for it.
	mat := &pb.ModelInferRequest{ModelName: "fraud", ModelVersion: "1",
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{2, 3}}},
		RawInputContents: [][]byte{le32f(1, 2, 3, 4, 5, 6)},
		Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "score",
			Parameters: map[string]*pb.InferParameter{"binary_data": {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: true}}}}},
	}
	r, err = c.ModelInfer(ctx, mat)
	if err != nil {
		t.Fatal(err)
	}
	if r.ModelVersion != "1" || len(r.Outputs) != 1 || len(r.RawOutputContents) != 1 ||
		math.Float64frombits(binary.LittleEndian.Uint64(r.RawOutputContents[0][8:])) != 15 {
		t.Errorf("matrix response %v", r)
	}
	if cols := f.lastRequest().Columns; len(cols) != 3 || cols[2].Name != "amount_avg_24h" || cols[2].Numbers[1] != 6 {
		t.Errorf("matrix columns %+v", cols)
	}
}

func TestGRPCInferErrors(t *testing.T) {
	t.Parallel()
	c := grpcClient(t, &fake{})
	ctx := ctxT(t)
	one := func(name, dt string, shape []int64, contents *pb.InferTensorContents) *pb.ModelInferRequest {
		return &pb.ModelInferRequest{ModelName: "fraud", Inputs: []*pb.ModelInferRequest_InferInputTensor{
			{Name: name, Datatype: dt, Shape: shape, Contents: contents}}}
	}
	fp := &pb.InferTensorContents{Fp64Contents: []float64{1}}
	for _, tc := range []struct {
		name string
		req  *pb.ModelInferRequest
		code codes.Code
		msg  string
	}{
		{"unknown model", &pb.ModelInferRequest{ModelName: "nope"}, codes.NotFound, `model "nope" is not served`},
		{"unknown version", &pb.ModelInferRequest{ModelName: "fraud", ModelVersion: "3"}, codes.NotFound, `model "fraud" has no version "3"`},
		{"shape", one("amount", "FP64", []int64{2}, fp), codes.InvalidArgument, `input "amount": shape [2] needs 2 values, got 1 in fp64_contents`},
		{"field", one("amount", "FP32", []int64{1}, fp), codes.InvalidArgument, `input "amount": datatype FP32 takes fp32_contents, got fp64_contents`},
		{"datatype", one("amount", "DOUBLE", []int64{1}, fp), codes.InvalidArgument, `input "amount": datatype "DOUBLE" is not a V2 datatype`},
		{"fp16 typed", one("amount", "FP16", []int64{1}, fp), codes.InvalidArgument, `input "amount": FP16 has no typed contents field; send it in raw_input_contents`},
		{"int8 range", one("n", "INT8", []int64{1}, &pb.InferTensorContents{IntContents: []int32{300}}), codes.InvalidArgument, `input "n" (INT8): data[0]: 300 is out of range`},
		{"no contents", one("amount", "FP64", []int64{1}, nil), codes.InvalidArgument, `input "amount": no contents (nor raw_input_contents)`},
		{"raw count", &pb.ModelInferRequest{ModelName: "fraud", Inputs: one("a", "FP64", []int64{1}, nil).Inputs, RawInputContents: [][]byte{le64(1), le64(2)}},
			codes.InvalidArgument, "raw_input_contents has 2 entries for 1 inputs; it must hold one per input, in order"},
		{"raw size", &pb.ModelInferRequest{ModelName: "fraud", Inputs: one("a", "FP64", []int64{2}, nil).Inputs, RawInputContents: [][]byte{le64(1)}},
			codes.InvalidArgument, `input "a": shape [2] of FP64 needs 16 bytes, got 8`},
		{"unknown output", &pb.ModelInferRequest{ModelName: "fraud", Inputs: one("a", "FP64", []int64{1}, fp).Inputs,
			Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "proba"}}}, codes.InvalidArgument, `unknown output "proba" (the model's outputs: "score" "label")`},
		{"not ready", &pb.ModelInferRequest{ModelName: "cold", Inputs: one("a", "FP64", []int64{1}, fp).Inputs}, codes.Unavailable, `model "cold" is not loaded yet`},
		{"backend bug", one("boom", "FP64", []int64{1}, fp), codes.Internal, "internal error"},
	} {
		_, err := c.ModelInfer(ctx, tc.req)
		wantCode(t, tc.name, err, tc.code, tc.msg)
	}
}
