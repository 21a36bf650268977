package testbackend

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
)

// host is the address a Backend listens on unless Host says another
// loopback address.
const host = "127.0.0.1"

// relistenTimeout bounds how long Restart retries a port that is still in
// use, for example by connections of the previous run in TIME_WAIT.
const relistenTimeout = 3 * time.Second

// ErrClosed is returned by the methods that start a Backend again once it
// has been closed.
var ErrClosed = errors.New("testbackend: closed")

// A Backend is a gRPC server on 127.0.0.1 serving EchoService and the
// standard health service, with knobs to make it fail. Its methods are safe
// for concurrent use.
type Backend struct {
	// Initialized by Start, read-only after.
	name  string
	addr  string // 127.0.0.1:port, the same across restarts
	port  int
	opts  options
	cert  *tls.Certificate // nil without TLS
	conns *connTracker
	rpcs  atomic.Int64

	// opMu serializes the operations that stop and start runs (Stop,
	// Restart, SetKeepalive, Close, and the start of GracefulStop). Lock
	// order: opMu, then mu; neither is held while a grpc handler could need
	// it.
	opMu sync.Mutex

	mu       sync.Mutex
	cur      *run              // nil while stopped
	draining map[*run]struct{} // runs inside GracefulStop
	kp       keepalive.ServerParameters
	serving  bool
	closed   bool
}

// run is one grpc.Server on one listener: a Backend has a new run after
// every Restart.
type run struct {
	srv    *grpc.Server
	lis    *listener
	health *health.Server
	served chan struct{} // closed when Serve has returned
}

// Stats is what a Backend has seen, from the server's side.
type Stats struct {
	// Accepted counts TCP connections accepted since Start, across restarts,
	// held ones included.
	Accepted int64
	// Open is the number of server-side connections open now, held ones
	// included.
	Open int
	// Held is the number of open connections that get no HTTP/2 at all
	// (ConnLimit, Frozen, Freeze).
	Held int
	// Frozen reports whether the backend is frozen now (Frozen, Freeze).
	Frozen bool
	// RPCs counts EchoService calls (unary calls and streams) that reached a
	// handler. Health checks are not counted.
	RPCs int64
}

// Start starts a backend on 127.0.0.1, serving at once. Close it when done.
func Start(opts ...Option) (*Backend, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	b := &Backend{
		opts:     o,
		port:     o.port,
		conns:    &connTracker{open: make(map[*trackedConn]struct{})},
		draining: make(map[*run]struct{}),
		kp:       o.keepalive,
		serving:  true,
	}
	b.conns.frozen.Store(o.frozen)
	if o.ca != nil {
		cert, err := o.ca.IssueServerCert()
		if err != nil {
			return nil, fmt.Errorf("testbackend: %w", err)
		}
		b.cert = &cert
	}
	lis, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: o.listenIP(), Port: o.port})
	if err != nil {
		return nil, fmt.Errorf("testbackend: listen: %w", err)
	}
	b.port = lis.Addr().(*net.TCPAddr).Port
	b.addr = net.JoinHostPort(o.listenIP().String(), strconv.Itoa(b.port))
	b.name = o.name
	if b.name == "" {
		b.name = b.addr
	}
	b.mu.Lock()
	b.cur = b.serveLocked(lis)
	b.mu.Unlock()
	return b, nil
}

// Addr returns the address the backend listens on, 127.0.0.1:port (or the
// Host address). It does not change across restarts.
func (b *Backend) Addr() string { return b.addr }

// Name returns the name the backend reports in its responses.
func (b *Backend) Name() string { return b.name }

// Stats returns what the backend has seen so far.
func (b *Backend) Stats() Stats {
	conns, held := b.conns.snapshot()
	return Stats{
		Accepted: b.conns.accepted.Load(),
		Open:     len(conns),
		Held:     held,
		Frozen:   b.conns.frozen.Load(),
		RPCs:     b.rpcs.Load(),
	}
}

// Freeze makes the backend hold every connection it accepts from now on,
// open and silent, as a server whose workers are all stuck: clients connect
// at the TCP level and their HTTP/2 handshakes time out. Connections served
// already go on being served. A held connection is closed when its client
// closes or resets it, so a freeze holds at most the connections clients
// keep trying (see StallForever for a server that never notices).
func (b *Backend) Freeze() { b.conns.frozen.Store(true) }

// Thaw ends a freeze (Frozen, Freeze): new connections are served again,
// and every connection held so far is reset with a TCP RST, as a server
// restarted out of its stall resets the connections in its queues. It
// returns how many it reset. With StallForever the held connections are
// left open. Thaw does not lift a ConnLimit, but resets the connections it
// held.
func (b *Backend) Thaw() int {
	b.conns.frozen.Store(false)
	if b.opts.stallForever {
		return 0
	}
	conns, _ := b.conns.snapshot()
	n := 0
	for _, c := range conns {
		if c.held {
			c.reset()
			n++
		}
	}
	return n
}

// Inodes returns the inode of every socket the backend has open now — its
// listening socket and its connections, held ones included — as
// /proc/self/fd shows them ("socket:[inode]"), so that a caller can tell the
// backend's descriptors from its own. It is empty where inodes cannot be
// read (outside Unix).
func (b *Backend) Inodes() []uint64 {
	var out []uint64
	b.mu.Lock()
	if b.cur != nil && b.cur.lis.inode != 0 {
		out = append(out, b.cur.lis.inode)
	}
	b.mu.Unlock()
	conns, _ := b.conns.snapshot()
	for _, c := range conns {
		if c.inode != 0 {
			out = append(out, c.inode)
		}
	}
	return out
}

// SetServing sets the health status the backend reports, for the whole
// server and for EchoService: SERVING if serving is true, NOT_SERVING
// otherwise. The status survives restarts. A new backend is SERVING.
func (b *Backend) SetServing(serving bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.serving = serving
	if b.cur != nil {
		b.setHealthLocked(b.cur.health)
	}
}

// ResetConns closes every server-side connection open now with a TCP RST,
// held ones included, and returns how many it reset. Streams on them fail
// on the client with UNAVAILABLE. The backend keeps accepting.
func (b *Backend) ResetConns() int {
	conns, _ := b.conns.snapshot()
	for _, c := range conns {
		c.reset()
	}
	return len(conns)
}

// Stop stops the backend hard, like a crash: the listener and every
// connection are closed at once and in-flight RPCs fail. It waits for the
// server's goroutines and handlers to finish. Restart serves again. Stop on
// a stopped backend does nothing; Stop during GracefulStop cuts the drain
// short.
func (b *Backend) Stop() {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	b.stopOpLocked(true)
}

// GracefulStop stops accepting, sends GOAWAY on every connection and waits
// for in-flight RPCs to finish. A Hold stream keeps it waiting until its
// client cancels; call Stop or Close from another goroutine to cut the wait
// short. Restart serves again.
func (b *Backend) GracefulStop() {
	b.opMu.Lock()
	b.mu.Lock()
	r := b.cur
	b.cur = nil
	if r != nil {
		b.draining[r] = struct{}{}
	}
	b.mu.Unlock()
	b.opMu.Unlock()
	if r == nil {
		return
	}

	r.srv.GracefulStop()
	r.wait()

	b.mu.Lock()
	delete(b.draining, r)
	b.mu.Unlock()
}

// Restart stops the backend hard if it is serving, then serves again on the
// same address. Connections still draining after a GracefulStop go on
// draining beside the new server, as in a rolling restart. A port still held
// by the kernel is retried for a few seconds.
func (b *Backend) Restart() error {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	if b.isClosed() {
		return ErrClosed
	}
	b.stopOpLocked(false)
	return b.startOpLocked()
}

// SetKeepalive changes the server's keepalive parameters, for example to
// start or end a GOAWAY storm. grpc fixes them when a server is created, so
// a serving backend restarts hard (as Restart) to apply them; a stopped one
// uses them at the next Restart.
func (b *Backend) SetKeepalive(kp keepalive.ServerParameters) error {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	if b.isClosed() {
		return ErrClosed
	}
	b.mu.Lock()
	b.kp = kp
	serving := b.cur != nil
	b.mu.Unlock()
	if !serving {
		return nil
	}
	b.stopOpLocked(false)
	return b.startOpLocked()
}

// Close stops the backend hard for good and waits for every goroutine it
// started. It is safe to call more than once.
func (b *Backend) Close() {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	b.stopOpLocked(true)
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

func (b *Backend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// stopOpLocked stops the serving run hard, and with draining also every run
// inside GracefulStop, and waits for them. Caller must hold b.opMu.
func (b *Backend) stopOpLocked(draining bool) {
	b.mu.Lock()
	runs := make([]*run, 0, 1+len(b.draining))
	if b.cur != nil {
		runs = append(runs, b.cur)
		b.cur = nil
	}
	if draining {
		for r := range b.draining {
			runs = append(runs, r)
		}
	}
	b.mu.Unlock()
	for _, r := range runs {
		// Stop during GracefulStop is allowed and makes it return.
		r.srv.Stop()
		r.wait()
	}
}

// startOpLocked listens on the backend's port again and serves. Caller must
// hold b.opMu, and the backend must be stopped.
func (b *Backend) startOpLocked() error {
	addr := &net.TCPAddr{IP: b.opts.listenIP(), Port: b.port}
	deadline := time.Now().Add(relistenTimeout)
	for {
		lis, err := net.ListenTCP("tcp4", addr)
		if err == nil {
			b.mu.Lock()
			b.cur = b.serveLocked(lis)
			b.mu.Unlock()
			return nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return fmt.Errorf("testbackend: listen %s again: %w", b.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveLocked makes a grpc.Server for lis and serves it in a new goroutine.
// Caller must hold b.mu.
func (b *Backend) serveLocked(tcp *net.TCPListener) *run {
	sopts := []grpc.ServerOption{
		grpc.KeepaliveParams(b.kp),
		// Stop waits for handlers too, so that Close leaves no goroutine.
		grpc.WaitForHandlers(true),
	}
	if b.cert != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{*b.cert},
			MinVersion:   tls.VersionTLS12,
		})))
	}
	sopts = append(sopts, b.opts.serverOpts...)
	r := &run{
		srv:    grpc.NewServer(sopts...),
		lis:    newListener(tcp, b.conns, &b.opts),
		health: health.NewServer(),
		served: make(chan struct{}),
	}
	echov1.RegisterEchoServiceServer(r.srv, &echoServer{b: b})
	healthpb.RegisterHealthServer(r.srv, r.health)
	if b.opts.services != nil {
		b.opts.services(r.srv)
	}
	b.setHealthLocked(r.health)
	go func() {
		defer close(r.served)
		// Serve's error is nil after Stop or GracefulStop, and any other
		// error means the listener broke, which Stats and the clients see.
		_ = r.srv.Serve(r.lis)
	}()
	return r
}

// setHealthLocked applies b.serving to h. Caller must hold b.mu.
func (b *Backend) setHealthLocked(h *health.Server) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if b.serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	h.SetServingStatus("", st)
	h.SetServingStatus(echov1.EchoService_ServiceDesc.ServiceName, st)
}

// wait blocks until the run's Serve has returned and its reset timers are
// done. Call it after Stop or GracefulStop.
func (r *run) wait() {
	<-r.served
	// Serve closed the listener, and with it the held connections; grpc
	// closed the served ones.
	_ = r.lis.Close()
	r.lis.stopTimers()
}
