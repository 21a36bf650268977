package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Load shape.
const (
	// pace is the pause of a worker between two RPCs.
	pace = 10 * time.Millisecond
	// holdMin and holdMax bound how long a Hold stream is kept open.
	holdMin, holdMax = 100 * time.Millisecond, 300 * time.Millisecond
	// perAttempt bounds one attempt of an RPC.
	perAttempt = 2 * time.Second
	// streamMessages is the number of round trips on an EchoStream.
	streamMessages = 3
	// backoffBase and backoffMax shape the retry backoff.
	backoffBase, backoffMax = 20 * time.Millisecond, 500 * time.Millisecond
)

// backoffFunc is the retry backoff: exponential from backoffBase, 20%
// jitter, at most backoffMax.
var backoffFunc = retry.BackoffExponentialWithJitterBounded(backoffBase, 0.2, backoffMax)

// interceptors returns c's interceptors: go-grpc-middleware's logging
// (outermost, so it sees each RPC's final result) and retry on UNAVAILABLE
// for unary RPCs, retry for server-streaming ones. Bidirectional streams
// cannot be retried by the interceptor; streamOnce retries them with the
// same backoff.
func (r *runner) interceptors(c *client) []grpc.DialOption {
	onRetry := retry.WithOnRetryCallback(func(context.Context, uint, error) { c.stats.retries.Add(1) })
	ropts := []retry.CallOption{
		retry.WithMax(r.cfg.RetryAttempts),
		retry.WithCodes(codes.Unavailable),
		retry.WithBackoff(backoffFunc),
		retry.WithPerRetryTimeout(perAttempt),
		onRetry,
	}
	logger := logging.LoggerFunc(func(_ context.Context, level logging.Level, _ string, fields ...any) {
		if level < logging.LevelError {
			return
		}
		if c.ch.kind != kindCompare {
			r.noteFailure(c.name, fields)
		}
	})
	lopts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithLevels(func(code codes.Code) logging.Level {
			if code == codes.OK || code == codes.Canceled {
				return logging.LevelDebug
			}
			return logging.LevelError
		}),
	}
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(logging.UnaryClientInterceptor(logger, lopts...), retry.UnaryClientInterceptor(ropts...)),
		grpc.WithChainStreamInterceptor(retry.StreamClientInterceptor(ropts...)),
	}
}

// noteFailure keeps the first failures, as the logging interceptor reports
// them.
func (r *runner) noteFailure(channel string, fields []any) {
	if r.loadCtx.Err() != nil {
		return
	}
	f := map[string]string{}
	for i := 0; i+1 < len(fields); i += 2 {
		if k, ok := fields[i].(string); ok {
			f[k] = fmt.Sprint(fields[i+1])
		}
	}
	line := fmt.Sprintf("%.2fs %s: %s/%s %s after %sms: %s", time.Since(r.start).Seconds(), channel,
		f[logging.ServiceFieldKey], f[logging.MethodFieldKey], f["grpc.code"], f["grpc.time_ms"], f["grpc.error"])
	r.recordFailure(line)
}

func (r *runner) recordFailure(line string) {
	r.mu.Lock()
	r.failureCount++
	keep := r.failureCount <= maxFailuresKept
	if keep {
		r.failures = append(r.failures, line)
	}
	r.mu.Unlock()
	if keep {
		r.logf("soak: RPC failed after retries: %s", line)
	}
}

// count records the outcome of one RPC.
func (c *client) count(err error, stream bool) {
	if stream {
		c.stats.streams.Add(1)
	}
	if err != nil {
		c.stats.fail(err)
		return
	}
	c.stats.ok.Add(1)
}

// startLoad starts workers unary and streams stream goroutines on c until
// the load stops.
func (r *runner) startLoad(c *client, workers, streams int) {
	for range workers {
		r.loadWG.Go(func() { r.unaryWorker(c) })
	}
	for range streams {
		r.loadWG.Go(func() { r.streamWorker(c) })
	}
}

// unaryWorker makes unary RPCs on c until the load stops: Config.Load's,
// or Echo.
func (r *runner) unaryWorker(c *client) {
	for r.loadCtx.Err() == nil {
		ctx, cancel := context.WithTimeout(r.loadCtx, rpcTimeout)
		var err error
		if r.cfg.Load != nil {
			err = r.cfg.Load(ctx, c.cc)
		} else {
			_, err = c.echo.Echo(ctx, &echov1.EchoRequest{Message: c.name})
		}
		cancel()
		if r.loadCtx.Err() != nil {
			return // the run is ending: not a failure
		}
		c.count(err, false)
		if _, isStatus := status.FromError(err); err != nil && !isStatus && c.ch.kind == kindMain {
			// The logging interceptor lists failed RPCs; an error of
			// Load's own made by no RPC is listed here.
			r.recordFailure(fmt.Sprintf("%.2fs %s: Load: %v", time.Since(r.start).Seconds(), c.name, err))
		}
		sleepCtx(r.loadCtx, pace)
	}
}

// streamWorker alternates Hold streams (held open for a while, so that
// they span faults and keep sockets draining) and EchoStream round trips.
func (r *runner) streamWorker(c *client) {
	for i := 0; r.loadCtx.Err() == nil; i++ {
		var err error
		if i%2 == 0 {
			err = r.hold(c)
		} else {
			err = r.echoStream(c)
		}
		if r.loadCtx.Err() != nil {
			return
		}
		c.count(err, true)
		if err != nil && c.ch.kind == kindMain {
			r.recordFailure(fmt.Sprintf("%.2fs %s: stream %v", time.Since(r.start).Seconds(), c.name, err))
		}
		sleepCtx(r.loadCtx, pace)
	}
}

// hold opens a Hold stream (retried by the interceptor until its first
// message), keeps it open for holdMin to holdMax, and cancels it.
//
// io.EOF before the first message is an UNAVAILABLE the retry interceptor
// lost. When it re-opens the stream and the new stream dies at once (its
// connection reset under it), grpc's SendMsg of the resent request returns
// io.EOF, leaving the status for RecvMsg to read, and go-grpc-middleware
// (v2.3.4, serverStreamingRetryingStream.reestablishStreamAndResendBuffer)
// returns that io.EOF as the call's result. Hold's server always sends
// before it ends, so io.EOF first can mean nothing else: it is retried here,
// as the UNAVAILABLE it hides would have been.
func (r *runner) hold(c *client) error {
	return r.retrying(c, func() error { return r.holdOnce(c) }, func(err error) bool { return errors.Is(err, io.EOF) })
}

// holdOnce is one Hold stream.
func (r *runner) holdOnce(c *client) error {
	ctx, cancel := context.WithTimeout(r.loadCtx, rpcTimeout)
	defer cancel()
	st, err := c.echo.Hold(ctx, &echov1.HoldRequest{Label: c.name})
	if err != nil {
		return err
	}
	if _, err := st.Recv(); err != nil {
		return err
	}
	sleepCtx(r.loadCtx, holdMin+rand.N(holdMax-holdMin))
	return nil
}

// retrying calls once until it succeeds, fails with an error retry refuses,
// or RetryAttempts are spent, backing off between attempts as the retry
// interceptor does and counting each retry.
func (r *runner) retrying(c *client, once func() error, retry func(error) bool) error {
	var err error
	for attempt := uint(0); attempt < max(r.cfg.RetryAttempts, 1); attempt++ {
		if attempt > 0 {
			c.stats.retries.Add(1)
			if !sleepCtx(r.loadCtx, backoffFunc(r.loadCtx, attempt)) {
				return err
			}
		}
		if err = once(); err == nil || !retry(err) {
			return err
		}
	}
	return err
}

// echoStream makes streamMessages round trips on an EchoStream, retrying
// the whole stream on UNAVAILABLE like the retry interceptor would.
func (r *runner) echoStream(c *client) error {
	return r.retrying(c, func() error { return r.streamOnce(c) }, func(err error) bool { return status.Code(err) == codes.Unavailable })
}

func (r *runner) streamOnce(c *client) error {
	ctx, cancel := context.WithTimeout(r.loadCtx, perAttempt)
	defer cancel()
	st, err := c.echo.EchoStream(ctx, retry.Disable())
	if err != nil {
		return err
	}
	for range streamMessages {
		if err := st.Send(&echov1.EchoStreamRequest{Message: c.name}); err != nil {
			if _, rerr := st.Recv(); rerr != nil {
				return rerr // the stream's status
			}
			return err
		}
		if _, err := st.Recv(); err != nil {
			return err
		}
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		if err == nil {
			return errors.New("soak: EchoStream sent more than it was asked")
		}
		return err
	}
	return nil
}
