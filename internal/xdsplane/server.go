package xdsplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	v3corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	v3discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	v3discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	v3cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	v3resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	v3server "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/xds"
	"google.golang.org/protobuf/proto"
)

// Type URLs of the four resource types a gRPC client fetches.
const (
	ListenerType = v3resource.ListenerType
	RouteType    = v3resource.RouteType
	ClusterType  = v3resource.ClusterType
	EndpointType = v3resource.EndpointType
)

// ErrClosed is returned by a closed Server.
var ErrClosed = errors.New("xdsplane: server closed")

// Options configure Start. The zero value is ready to use.
type Options struct {
	// NodeID is the node the server publishes to; empty means a unique
	// generated id. Bootstrap uses it.
	NodeID string
	// Logf, if set, receives the server's log lines (NACKs, rollbacks,
	// go-control-plane's warnings and errors).
	Logf func(format string, args ...any)
}

// A NACK is a response the client rejected.
type NACK struct {
	TypeURL  string // resource type
	Rejected string // version the client rejected ("" if unknown)
	Held     string // version the client kept, which the server rolled back to
	Message  string // the client's error_detail
}

// Server is an ADS management server on 127.0.0.1. Its methods are safe for
// concurrent use.
type Server struct {
	// initialized by Start, read-only after
	nodeID string
	addr   string
	logf   func(format string, args ...any)

	mu      sync.Mutex // guards everything below; held across SetSnapshot so that versions never go backwards
	closed  bool
	run     *serving
	version int
	current [types.UnknownType]v3cache.Resources            // what the cache holds, per type
	history [types.UnknownType]map[string]v3cache.Resources // the versions a NACK may roll back to, per type (pruneLocked)
	nonces  map[streamNonce]string                          // response → version sent
	streams map[int64]*streamState                          // open ADS streams (one per client)
	nacks   []NACK
	changed chan struct{} // closed and replaced on every ACK or NACK
}

// streamState is what one client (one ADS stream) holds.
type streamState struct {
	subscribed [types.UnknownType]bool   // it asked for the type
	acked      [types.UnknownType]string // last version of the type it accepted
}

// streamNonce names one response: nonces are per stream.
type streamNonce struct {
	stream int64
	nonce  string
}

// serving is one incarnation of the server: Restart replaces it.
type serving struct {
	cache  v3cache.SnapshotCache
	gs     *grpc.Server
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returned
}

var nodes atomic.Uint64

// Start starts a management server on 127.0.0.1 with no resources.
func Start(o Options) (*Server, error) {
	s := &Server{
		nodeID:  o.NodeID,
		logf:    o.Logf,
		nonces:  map[streamNonce]string{},
		streams: map[int64]*streamState{},
		changed: make(chan struct{}),
	}
	if s.nodeID == "" {
		s.nodeID = "leakproof-node-" + strconv.FormatUint(nodes.Add(1), 10)
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	for i := range s.history {
		s.history[i] = map[string]v3cache.Resources{}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("xdsplane: listen: %w", err)
	}
	s.addr = lis.Addr().String()
	s.mu.Lock()
	s.run = s.serveLocked(lis)
	s.mu.Unlock()
	return s, nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// NodeID returns the node id the server publishes to.
func (s *Server) NodeID() string { return s.nodeID }

// Bootstrap returns a gRPC xDS bootstrap config (JSON) for a client of this
// server: one insecure ADS server at Addr, the node id, no certificates.
func (s *Server) Bootstrap() []byte {
	return fmt.Appendf(nil, `{
  "xds_servers": [{"server_uri": "passthrough:///%s", "channel_creds": [{"type": "insecure"}]}],
  "node": {"id": %q}
}`, s.addr, s.nodeID)
}

// Resolver returns an xDS resolver builder (scheme "xds") that reads
// Bootstrap instead of the GRPC_XDS_BOOTSTRAP environment. Each channel
// built with it gets its own xDS client, closed with the channel.
func (s *Server) Resolver() (resolver.Builder, error) {
	b, err := xds.NewXDSResolverWithConfigForTesting(s.Bootstrap())
	if err != nil {
		return nil, fmt.Errorf("xdsplane: xDS resolver: %w", err)
	}
	return b, nil
}

// Update publishes res, replacing every resource published before. Each
// resource type whose resources changed gets a new version; the others keep
// theirs, so the client sees only what changed. It returns the new
// snapshot's version number, which a changed type's version equals.
func (s *Server) Update(ctx context.Context, res Resources) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", ErrClosed
	}
	s.version++
	v := strconv.Itoa(s.version)
	for t, items := range map[types.ResponseType][]types.Resource{
		types.Listener: asResources(clone(res.Listeners)),
		types.Route:    asResources(clone(res.Routes)),
		types.Cluster:  asResources(clone(res.Clusters)),
		types.Endpoint: asResources(clone(res.Endpoints)),
	} {
		next := v3cache.NewResources(v, items)
		if len(next.Items) != len(items) {
			return "", fmt.Errorf("xdsplane: two %s resources with one name", typeName(t))
		}
		if s.current[t].Version != "" && sameItems(s.current[t].Items, next.Items) {
			continue
		}
		s.current[t] = next
		s.history[t][v] = next
	}
	s.pruneLocked()
	if err := s.setLocked(ctx); err != nil {
		return "", err
	}
	return v, nil
}

// keptVersions is how many of the latest versions of each type the history
// keeps beyond those a client holds or is being sent: a client that
// reconnects (after Restart, or a stream it lost) names the version it
// holds only when it next answers.
const keptVersions = 8

// pruneLocked drops from the history every version no NACK can roll back
// to: a NACK rolls back to the version its client last accepted, so the
// history keeps the version each open stream accepted, the versions sent
// and not yet answered, the current one and the keptVersions latest. A long
// run's pushes then do not grow the server. Caller must hold s.mu.
func (s *Server) pruneLocked() {
	sent := make(map[string]bool, len(s.nonces))
	for _, v := range s.nonces {
		sent[v] = true
	}
	for t := range s.history {
		for v := range s.history[t] {
			n, err := strconv.Atoi(v)
			if err == nil && n > s.version-keptVersions || sent[v] || v == s.current[t].Version || s.heldLocked(types.ResponseType(t), v) {
				continue
			}
			delete(s.history[t], v)
		}
	}
}

// heldLocked reports whether an open stream last accepted version v of t.
// Caller must hold s.mu.
func (s *Server) heldLocked(t types.ResponseType, v string) bool {
	for _, st := range s.streams {
		if st.acked[t] == v {
			return true
		}
	}
	return false
}

// historyLen is the number of versions the history holds, over every
// type.
func (s *Server) historyLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, h := range s.history {
		n += len(h)
	}
	return n
}

// setLocked hands the current resources to the cache. Caller must hold s.mu.
func (s *Server) setLocked(ctx context.Context) error {
	snap := &v3cache.Snapshot{Resources: s.current}
	if err := s.run.cache.SetSnapshot(ctx, s.nodeID, snap); err != nil {
		return fmt.Errorf("xdsplane: set snapshot: %w", err)
	}
	return nil
}

// Acked returns the version of typeURL every connected client has
// accepted: the oldest among the clients that asked for the type ("" if a
// client accepted none yet, or none asked).
func (s *Server) Acked(typeURL string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, _ := s.ackedLocked(v3cache.GetResponseType(typeURL))
	return v
}

// ackedLocked returns the oldest version of t accepted by the streams that
// asked for it, and that number (-1 when none asked). Caller must hold s.mu.
func (s *Server) ackedLocked(t types.ResponseType) (string, int) {
	oldest, n := "", -1
	for _, st := range s.streams {
		if !st.subscribed[t] {
			continue
		}
		v, err := strconv.Atoi(st.acked[t])
		if err != nil {
			v = 0
		}
		if n < 0 || v < n {
			oldest, n = st.acked[t], v
		}
	}
	return oldest, n
}

// WaitAcked waits until every connected client that asked for typeURL has
// accepted version (or a later one). Pass the version Update returned.
func (s *Server) WaitAcked(ctx context.Context, typeURL, version string) error {
	want, err := strconv.Atoi(version)
	if err != nil {
		return fmt.Errorf("xdsplane: version %q: %w", version, err)
	}
	t := v3cache.GetResponseType(typeURL)
	for {
		s.mu.Lock()
		_, got := s.ackedLocked(t)
		ch := s.changed
		s.mu.Unlock()
		if got >= want {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("xdsplane: waiting for every client to accept %s version %s (oldest held: %d): %w", typeName(t), version, got, ctx.Err())
		}
	}
}

// NACKs returns every NACK received so far, oldest first.
func (s *Server) NACKs() []NACK {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]NACK(nil), s.nacks...)
}

// WaitNACK waits for a NACK of typeURL after the first skip ones and
// returns it.
func (s *Server) WaitNACK(ctx context.Context, typeURL string, skip int) (NACK, error) {
	for {
		s.mu.Lock()
		n := 0
		for _, k := range s.nacks {
			if k.TypeURL == typeURL {
				if n == skip {
					s.mu.Unlock()
					return k, nil
				}
				n++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return NACK{}, fmt.Errorf("xdsplane: waiting for a NACK of %s: %w", typeName(v3cache.GetResponseType(typeURL)), ctx.Err())
		}
	}
}

// Restart stops the server, dropping every ADS stream, and starts it again
// on the same port with a fresh snapshot cache holding the current
// resources, as a control plane that restarts and rebuilds its state does.
// Clients reconnect with backoff and keep their resources meanwhile.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	old := s.run
	s.run = nil
	s.mu.Unlock()
	old.stop()

	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("xdsplane: restart: listen on %s: %w", s.addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		lis.Close()
		return ErrClosed
	}
	s.run = s.serveLocked(lis)
	if s.current[types.Listener].Version == "" {
		return nil
	}
	return s.setLocked(ctx)
}

// Close stops the server and closes every ADS stream.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	run := s.run
	s.run = nil
	s.mu.Unlock()
	if run != nil {
		run.stop()
	}
}

// serveLocked starts serving ADS on lis. Caller must hold s.mu.
func (s *Server) serveLocked(lis net.Listener) *serving {
	ctx, cancel := context.WithCancel(context.Background())
	cache := v3cache.NewSnapshotCache(false, v3cache.IDHash{}, logger{s.logf})
	xs := v3server.NewServer(ctx, cache, v3server.CallbackFuncs{
		StreamRequestFunc:  s.onRequest,
		StreamResponseFunc: s.onResponse,
		StreamClosedFunc:   s.onClosed,
	})
	gs := grpc.NewServer()
	v3discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, xs)
	run := &serving{cache: cache, gs: gs, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(run.done)
		gs.Serve(lis) // returns nil after Stop; nothing else ends it
	}()
	return run
}

func (r *serving) stop() {
	r.cancel()
	r.gs.Stop()
	<-r.done
}

// onResponse remembers which version each nonce carried, so that a NACK
// can name the version it rejects.
func (s *Server) onResponse(_ context.Context, stream int64, _ *v3discoverypb.DiscoveryRequest, resp *v3discoverypb.DiscoveryResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nonces[streamNonce{stream, resp.GetNonce()}] = resp.GetVersionInfo()
}

// onClosed forgets the nonces of a closed stream.
func (s *Server) onClosed(stream int64, _ *v3corepb.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.nonces {
		if k.stream == stream {
			delete(s.nonces, k)
		}
	}
	delete(s.streams, stream)
	s.broadcastLocked()
}

// onRequest records ACKs and NACKs. On a NACK it rolls the type back to the
// version the client holds before the cache sees the request: the cache
// answers any request whose version differs from its snapshot, so without
// the rollback it would resend the rejected version at once, forever.
func (s *Server) onRequest(stream int64, req *v3discoverypb.DiscoveryRequest) error {
	t := v3cache.GetResponseType(req.GetTypeUrl())
	if t == types.UnknownType {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[stream]
	if st == nil {
		st = &streamState{}
		s.streams[stream] = st
	}
	st.subscribed[t] = true
	if req.GetResponseNonce() == "" {
		return nil // a subscription, not an answer
	}
	key := streamNonce{stream, req.GetResponseNonce()}
	rejected := s.nonces[key]
	delete(s.nonces, key)
	defer s.broadcastLocked()
	if req.GetErrorDetail() == nil {
		st.acked[t] = req.GetVersionInfo()
		return nil
	}
	held := req.GetVersionInfo()
	st.acked[t] = held
	s.nacks = append(s.nacks, NACK{TypeURL: req.GetTypeUrl(), Rejected: rejected, Held: held, Message: req.GetErrorDetail().GetMessage()})
	s.logf("xdsplane: client NACKed %s version %q (keeps %q): %s", typeName(t), rejected, held, req.GetErrorDetail().GetMessage())
	// Roll back only what the cache holds now: a NACK of an older version
	// (another client's, or one overtaken by a newer Update) must not undo
	// a newer push.
	if s.closed || s.run == nil || rejected == "" || s.current[t].Version != rejected {
		return nil
	}
	back, ok := s.history[t][held]
	if !ok { // it accepted nothing yet: hold nothing at its version
		back = v3cache.Resources{Version: held, Items: map[string]types.ResourceWithTTL{}}
	}
	s.current[t] = back
	if err := s.setLocked(context.Background()); err != nil {
		s.logf("xdsplane: rolling %s back to %q: %v", typeName(t), held, err)
	}
	return nil
}

// broadcastLocked wakes the waiters. Caller must hold s.mu.
func (s *Server) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func asResources[M types.Resource](in []M) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

func sameItems(a, b map[string]types.ResourceWithTTL) bool {
	if len(a) != len(b) {
		return false
	}
	for name, x := range a {
		y, ok := b[name]
		if !ok || !proto.Equal(x.Resource, y.Resource) {
			return false
		}
	}
	return true
}

func typeName(t types.ResponseType) string {
	switch t {
	case types.Listener:
		return "Listener"
	case types.Route:
		return "RouteConfiguration"
	case types.Cluster:
		return "Cluster"
	case types.Endpoint:
		return "ClusterLoadAssignment"
	}
	return "resource type " + strconv.Itoa(int(t))
}

// logger passes go-control-plane's warnings and errors to Options.Logf;
// its debug and info lines are per request and drown a test's output.
type logger struct{ logf func(string, ...any) }

func (l logger) Debugf(string, ...any) {}
func (l logger) Infof(string, ...any)  {}
func (l logger) Warnf(format string, args ...any) {
	l.logf("go-control-plane: "+format, args...)
}
func (l logger) Errorf(format string, args ...any) {
	l.logf("go-control-plane: "+format, args...)
}
