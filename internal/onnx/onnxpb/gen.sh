#!/bin/sh
# Regenerates onnx.pb.go from onnx.proto (copied unchanged from Debian's python3-onnx 1.12.0) with protoc (Debian's
# protobuf-compiler) and the protoc-gen-go of the google.golang.org/protobuf version pinned in go.mod, so the
# generator and the runtime always match. Run through `go generate ./internal/onnx/onnxpb`.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
protoc --plugin=protoc-gen-go="$tmp/protoc-gen-go" --go_out=. --go_opt=paths=source_relative \
	--go_opt=Monnx.proto=github.com/perceptron-dev/perceptron/internal/onnx/onnxpb onnx.proto
