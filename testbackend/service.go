package testbackend

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/status"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
)

// echoServer implements EchoService for one Backend.
type echoServer struct {
	echov1.UnimplementedEchoServiceServer
	b *Backend
}

func (s *echoServer) self() *echov1.Backend {
	return &echov1.Backend{Name: s.b.name, Address: s.b.addr}
}

func (s *echoServer) Echo(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	s.b.rpcs.Add(1)
	return &echov1.EchoResponse{Message: req.GetMessage(), Backend: s.self()}, nil
}

func (s *echoServer) EchoStream(stream echov1.EchoService_EchoStreamServer) error {
	s.b.rpcs.Add(1)
	for seq := uint64(0); ; seq++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &echov1.EchoStreamResponse{Message: req.GetMessage(), Backend: s.self(), Sequence: seq}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (s *echoServer) Hold(req *echov1.HoldRequest, stream echov1.EchoService_HoldServer) error {
	s.b.rpcs.Add(1)
	if err := stream.Send(&echov1.HoldResponse{Label: req.GetLabel(), Backend: s.self()}); err != nil {
		return err
	}
	// The stream's context ends when the client cancels or the server's
	// transport goes away (Stop, a reset, a forced close after a GOAWAY's
	// grace). GracefulStop waits for it.
	<-stream.Context().Done()
	return status.FromContextError(stream.Context().Err()).Err()
}
