package leakzoo

import (
	"context"
	"sync/atomic"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"google.golang.org/grpc"
)

// AbandonedStream is an application that opens a watch stream (a
// server-streaming call the server keeps open) on a context of its own
// every few calls, reads the first answer and drops the stream: it never
// reads it to the end or cancels its context, so grpc keeps it open for the life of the channel (grpc-go's
// NewStream documents those four ways out; grpc/grpc-go#5336 and
// googleapis/google-cloud-go#183 are this leak). When the resolver removes
// the backend it runs on, grpc drains the connection gracefully, and the
// socket stays open for as long as the stream: with no bound under grpc's
// own policies, for the drain timeout under leakproof's.
const AbandonedStream = "leakzoo_abandoned_stream"

// abandonEvery is how many calls the application makes per stream it
// abandons.
const abandonEvery = 25

func abandonedStream() *App {
	h := &held{}
	var calls atomic.Int64
	return &App{
		Release: h.release,
		Load: func(ctx context.Context, cc *grpc.ClientConn) error {
			echo := echov1.NewEchoServiceClient(cc)
			if calls.Add(1)%abandonEvery != 0 {
				_, err := echo.Echo(ctx, &echov1.EchoRequest{Message: AbandonedStream})
				return err
			}
			sctx, cancel := context.WithCancel(context.Background())
			h.add(cancel)
			// Until its first answer the stream ends with the call; after
			// it, nothing ends it: the bug.
			stop := context.AfterFunc(ctx, cancel)
			defer stop()
			st, err := echo.Hold(sctx, &echov1.HoldRequest{Label: AbandonedStream})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		},
	}
}
