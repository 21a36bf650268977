package e2e

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// idServer is grpc's interop TestService that also fills ServerId, which
// the pick_first interop case requires.
type idServer struct {
	testgrpc.TestServiceServer
	id string
}

func (s *idServer) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	resp, err := s.TestServiceServer.UnaryCall(ctx, req)
	if err == nil && req.GetFillServerId() {
		resp.ServerId = s.id
	}
	return resp, err
}

// StartInterop starts grpc's interop TestService on 127.0.0.1, answering
// with its own address as ServerId, stopped when t ends, and returns its
// address.
func StartInterop(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, &idServer{TestServiceServer: interop.NewTestServer(), id: l.Addr().String()})
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}
