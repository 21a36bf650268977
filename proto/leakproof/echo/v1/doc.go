// Package echov1 is the Go code for leakproof.echo.v1.EchoService, the
// service every leakproof test backend serves: start one with
// testbackend and call it with NewEchoServiceClient.
//
// The .pb.go files are generated from echo.proto by scripts/genproto.sh; edit
// the .proto and regenerate rather than editing them.
package echov1
