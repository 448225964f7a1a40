// Package onnxpb is the Go code protoc generates from onnx.proto, the ONNX model format's schema (Apache-2.0, the
// ONNX Project Contributors; the file keeps its notice). It holds only generated types; package onnx reads and writes
// models with them.
package onnxpb

//go:generate sh gen.sh
