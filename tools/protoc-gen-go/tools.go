//go:build tools

// Package tools pins protoc-gen-go to the google.golang.org/protobuf version
// in leakproof's own go.mod, so that the generated code never comes from a
// newer generator than the runtime it links against. Keep the two in step:
// when the root go.mod moves protobuf, move this one too.
package tools

import (
	_ "google.golang.org/protobuf/cmd/protoc-gen-go"
)
