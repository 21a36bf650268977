package soak

import (
	"context"
	"io"
	"testing"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// eofFirstEcho answers Hold, in turn, with each error of errs, then with a
// stream that sends: what a client sees when a stream dies as it opens and
// the request's SendMsg returns io.EOF (the stream's status is for RecvMsg
// to read), returned by the generated Hold (the first attempt) or by the
// retry interceptor's Recv (a re-opened stream). errOpen marks an error
// Hold returns itself. (A fake: the race cannot be provoked on demand with
// real sockets.)
type eofFirstEcho struct {
	echov1.EchoServiceClient
	errs  []error
	calls int
}

type openErr struct{ error }

type holdStream struct {
	grpc.ServerStreamingClient[echov1.HoldResponse]
	err error
}

func (s holdStream) Recv() (*echov1.HoldResponse, error) {
	if s.err != nil {
		return nil, s.err
	}
	return &echov1.HoldResponse{}, nil
}

func (e *eofFirstEcho) Hold(context.Context, *echov1.HoldRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[echov1.HoldResponse], error) {
	var err error
	if e.calls < len(e.errs) {
		err = e.errs[e.calls]
	}
	e.calls++
	if o, ok := err.(openErr); ok {
		return nil, o.error
	}
	return holdStream{err: err}, nil
}

func TestHoldRetriesTheEOFTheInterceptorLost(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &runner{cfg: Config{RetryAttempts: 4}, loadCtx: ctx}
	for _, tc := range []struct {
		name      string
		errs      []error
		wantErr   bool
		wantCalls int
	}{
		{"io.EOF twice, then a message", []error{io.EOF, io.EOF}, false, 3},
		{"io.EOF from Hold, then a message", []error{openErr{io.EOF}}, false, 2},
		{"io.EOF on every attempt", []error{io.EOF, io.EOF, io.EOF, io.EOF, io.EOF}, true, 4},
		{"a status is the result", []error{status.Error(codes.PermissionDenied, "no")}, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echo := &eofFirstEcho{errs: tc.errs}
			c := &client{name: "main", echo: echo, stats: &rpcCounters{}}
			err := r.hold(c)
			if (err != nil) != tc.wantErr || echo.calls != tc.wantCalls {
				t.Errorf("hold = %v after %d streams, want error %v after %d", err, echo.calls, tc.wantErr, tc.wantCalls)
			}
			if got := c.stats.retries.Load(); got != int64(tc.wantCalls-1) {
				t.Errorf("%d retries counted, want %d", got, tc.wantCalls-1)
			}
		})
	}
}
