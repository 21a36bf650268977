//go:build tools

// Package tools pins buf and protoc-gen-go-grpc, the code generation tools
// that scripts/genproto.sh builds, so that `go mod tidy` keeps them and every
// machine builds the same versions. It is a module of its own: nothing here
// reaches the go.mod of leakproof's users.
//
// protoc-gen-go is pinned in the nested module ./protoc-gen-go instead: buf
// v1.75.0 needs a newer google.golang.org/protobuf than the v1.36.12 runtime
// the generated code links against, and one module can hold only one version
// of it. The generator must match that runtime, so it lives apart.
package tools

import (
	_ "github.com/bufbuild/buf/cmd/buf"
	_ "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
)
