package leakzoo

import (
	"context"
	"sync"

	"google.golang.org/grpc"
)

// StreamWatcher is a stream interceptor, as tracing and metrics libraries
// install them, that starts a goroutine per stream to end the stream's
// span when the stream ends, and learns that the stream ended only from
// RecvMsg returning an error. A stream the application ends by cancelling
// its context, without reading it to the end, leaves the goroutine waiting
// forever (open-telemetry/opentelemetry-go-contrib#839, and #818 for a
// stream never half-closed). It never heals: closing the channel does not
// end the goroutines.
const StreamWatcher = "leakzoo_stream_watcher"

func streamWatcher() *App {
	release := make(chan struct{})
	var once sync.Once
	intercept := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		w := &watchedStream{ClientStream: cs, ended: make(chan struct{})}
		go w.watch(release)
		return w, nil
	}
	return &App{
		DialOptions: []grpc.DialOption{grpc.WithChainStreamInterceptor(intercept)},
		Release:     func() { once.Do(func() { close(release) }) },
	}
}

// watchedStream tells its watcher when RecvMsg fails.
type watchedStream struct {
	grpc.ClientStream
	once  sync.Once
	ended chan struct{}
}

func (w *watchedStream) RecvMsg(m any) error {
	err := w.ClientStream.RecvMsg(m)
	if err != nil {
		w.once.Do(func() { close(w.ended) })
	}
	return err
}

// watch stands for the span's end. The bug: it does not also wait for the
// stream's context. release is the test's cleanup, not the library's.
func (w *watchedStream) watch(release <-chan struct{}) {
	select {
	case <-w.ended:
	case <-release:
	}
}
