// Command goaway sends RPCs for a few seconds to backends that end every
// connection with a GOAWAY after 300ms (MaxConnectionAge), through
// leakproof_round_robin with go-grpc-middleware's retry and logging
// interceptors. It prints how many RPCs failed (none), how many GOAWAYs the
// refcount trace saw, and that each backend kept one subchannel throughout,
// reconnected after every GOAWAY and released in the end.
//
//	go run ./examples/goaway
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	_ "github.com/leakproof/leakproof/balancer/roundrobin" // registers leakproof_round_robin
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

const (
	duration = 2 * time.Second        // how long RPCs are sent
	workers  = 4                      // concurrent callers
	maxAge   = 300 * time.Millisecond // the backends' MaxConnectionAge
	timeout  = 10 * time.Second
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "goaway:", err)
		os.Exit(1)
	}
}

// interceptorLogger adapts a *slog.Logger to go-grpc-middleware's logging.
func interceptorLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

func run(w io.Writer) error {
	r := manual.NewBuilderWithScheme("goaway")
	var state resolver.State
	var bs []*testbackend.Backend
	for i := range 2 {
		b, err := testbackend.Start(testbackend.Name(fmt.Sprintf("backend-%d", i)), testbackend.Keepalive(keepalive.ServerParameters{
			MaxConnectionAge:      maxAge,
			MaxConnectionAgeGrace: time.Second, // RPCs in flight at the GOAWAY finish
		}))
		if err != nil {
			return err
		}
		defer b.Close()
		bs = append(bs, b)
		state.Endpoints = append(state.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: b.Addr()}}})
	}
	r.InitialState(state)
	target := r.Scheme() + ":///echo"
	sub := trace.SubscribeMatch(1<<16, trace.Match{Target: target}, nil)
	defer sub.Close()

	// Calls that end OK are logged at DEBUG, UNAVAILABLE at WARN. The first
	// call is shown at DEBUG; after it, only trouble is. Retries are logged
	// as they happen.
	var level slog.LevelVar
	level.Set(slog.LevelDebug)
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: &level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	var retries atomic.Int64
	retryOpts := []retry.CallOption{
		retry.WithCodes(codes.Unavailable),
		retry.WithMax(5), // attempts, the first included
		retry.WithBackoff(retry.BackoffExponentialWithJitter(10*time.Millisecond, 0.2)),
		retry.WithOnRetryCallback(func(ctx context.Context, attempt uint, err error) {
			retries.Add(1)
			logger.WarnContext(ctx, "retrying", "attempt", attempt, "error", err)
		}),
	}
	cc, err := grpc.NewClient(target,
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"leakproof_round_robin":{}}]}`),
		grpc.WithContextDialer(subconn.Dialer(nil)),
		grpc.WithChainUnaryInterceptor(
			logging.UnaryClientInterceptor(interceptorLogger(logger), logging.WithLogOnEvents(logging.FinishCall)),
			retry.UnaryClientInterceptor(retryOpts...),
		),
	)
	if err != nil {
		return err
	}
	defer cc.Close()
	fmt.Fprintf(w, "2 backends with MaxConnectionAge %v; leakproof_round_robin, retry on UNAVAILABLE (5 attempts, exponential backoff with jitter), slog logging\n", maxAge)

	echo := echov1.NewEchoServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "first"}, grpc.WaitForReady(true)); err != nil {
		return err
	}
	level.Set(slog.LevelInfo)

	// Send RPCs from several goroutines for a while.
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(duration)
	for range workers {
		wg.Go(func() {
			for time.Now().Before(end) {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				_, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"}, grpc.WaitForReady(true))
				cancel()
				sent.Add(1)
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	cc.Close()

	// Read the trace up to the destroy of every subchannel.
	var events []trace.Event
	deadline := time.After(timeout)
	for created, destroyed := 0, 0; created == 0 || created != destroyed; {
		select {
		case <-sub.Ready():
			batch, ok := sub.Read(nil)
			if !ok {
				return fmt.Errorf("the trace subscription fell behind")
			}
			events = append(events, batch...)
			for _, e := range batch {
				switch e.Kind {
				case trace.KindCreate:
					created++
				case trace.KindDestroy:
					destroyed++
				}
			}
		case <-deadline:
			return fmt.Errorf("not every subchannel was destroyed %v after Close", timeout)
		}
	}
	count := map[trace.Kind]int{}
	for _, e := range events {
		count[e.Kind]++
	}
	fmt.Fprintf(w, "%d RPCs in %v: %d failed, %d retried\n", sent.Load(), duration, failed.Load(), retries.Load())
	fmt.Fprintf(w, "GOAWAYs seen (trace): %d\n", count[trace.KindGoAway])
	fmt.Fprintf(w, "subchannels: %d created, %d reconnects, %d destroyed; sockets: %d opened, %d closed\n",
		count[trace.KindCreate], count[trace.KindConnect]-count[trace.KindCreate], count[trace.KindDestroy],
		count[trace.KindSocketOpen], count[trace.KindSocketClose])

	if failed.Load() > 0 {
		return fmt.Errorf("%d of %d RPCs failed", failed.Load(), sent.Load())
	}
	if count[trace.KindGoAway] < 2 {
		return fmt.Errorf("%d GOAWAYs in %v, want several", count[trace.KindGoAway], duration)
	}
	if count[trace.KindCreate] != len(bs) || count[trace.KindSocketOpen] != count[trace.KindSocketClose] {
		return fmt.Errorf("want one subchannel per backend and every socket closed: %v", count)
	}
	if rep := trace.Check(events); !rep.Clean() {
		return fmt.Errorf("trace check: %v", rep.Problems)
	}
	for _, b := range bs {
		if n, err := leaktest.SocketsTo(b.Addr()); err != nil || n != 0 {
			return fmt.Errorf("%d sockets to %s after every subchannel was destroyed (%v)", n, b.Addr(), err)
		}
	}
	fmt.Fprintln(w, "trace check clean; 0 sockets to any backend")
	return nil
}
