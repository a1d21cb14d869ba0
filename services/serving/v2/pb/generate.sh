#!/bin/sh
# Regenerates grpc_predict_v2.pb.go and grpc_predict_v2_grpc.pb.go from grpc_predict_v2.proto.
# The generated files are committed: building and testing need none of these tools.
#
# grpc_predict_v2.proto is the Open Inference Protocol's gRPC definition, verbatim:
# github.com/kserve/open-inference-protocol, specification/protocol/open_inference_grpc.proto
# (commit eeb043e, 2023-11-05) — KServe's grpc_predict_v2.proto (package inference, service
# GRPCInferenceService) plus ModelMetadataResponse.properties and the double and uint64
# InferParameter choices, wire-compatible with it. The Go package is given here (M flags), so
# the .proto stays as published.
#
# Made with:
#   protoc 3.21.12            apt-get install -y protobuf-compiler   (Debian 12)
#   protoc-gen-go v1.36.12    go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   protoc-gen-go-grpc v1.6.2 go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
# (protoc-gen-go matches the google.golang.org/protobuf version in services/serving/go.mod.)
set -eu
cd "$(dirname "$0")"
PATH="$(go env GOPATH)/bin:$PATH"
PKG=github.com/flywheel-ml/flywheel/services/serving/v2/pb
protoc --proto_path=. \
	--go_out=. --go_opt=paths=source_relative --go_opt=Mgrpc_predict_v2.proto=$PKG \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mgrpc_predict_v2.proto=$PKG \
	grpc_predict_v2.proto
