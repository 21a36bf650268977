package subconn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/leakproof/leakproof/internal/sockowner"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/resolver"
)

// DialFunc is the signature grpc.WithContextDialer takes.
type DialFunc func(ctx context.Context, addr string) (net.Conn, error)

// Dialer returns a dial function for grpc.WithContextDialer that gives every
// socket an owner: the leakproof subchannel that asked grpc for it (read from
// the address attributes grpc passes to dialers). Each socket's open and close
// are reported to that subchannel, so the manager knows exactly which sockets
// it owns, tells a GOAWAY from a socket closed or reset by the peer, waits for
// every socket before writing destroy, and force-closes sockets still
// draining after the drain timeout.
//
// base dials the socket; nil dials TCP like grpc's default dialer (OS TCP
// keepalive settings). Sockets of subchannels not created by a leakproof
// manager are dialed by base and not wrapped. As with any custom dialer, grpc
// applies no HTTP CONNECT proxy and no TCP_USER_TIMEOUT.
func Dialer(base DialFunc) DialFunc {
	if base == nil {
		base = defaultDial
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		r := recordFromContext(ctx)
		if r == nil {
			return base(ctx, addr)
		}
		return r.dial(ctx, addr, base)
	}
}

// dial dials a socket owned by r. A subchannel already shut down gets no
// socket: grpc can dial for a subchannel shut down right after Connect, and
// that socket would outlive the subchannel's destroy.
func (r *record) dial(ctx context.Context, addr string, base DialFunc) (net.Conn, error) {
	if !r.dialStart() {
		return nil, fmt.Errorf("subconn: subchannel #%d %s is shut down; not dialing", r.id, r.key())
	}
	conn, err := base(ctx, addr)
	return r.dialDone(conn, err)
}

// ownSockets tells Dialer that sockets of sc belong to r: it puts the owner
// token into the addresses of grpc's own subchannel with UpdateAddresses,
// which grpc only stores while the subchannel is IDLE (it is: nobody has
// called Connect yet), and from which grpc builds the handshake info it
// passes to dialers. Parents never see the token, so a parent that looks the
// address up still finds it.
//
// Only a SubConn that is grpc's own (no parent wrapped it) is stamped: a
// parent that wraps SubConns may have changed the address on its way down
// (xDS's cluster_impl adds the cluster's handshake info), and replacing it
// would drop that. Under xDS the token is in the address given to
// NewSubConn instead (Manager.newSubConn); sockets of other wrapped
// subchannels are dialed untracked.
func ownSockets(sc balancer.SubConn, addr resolver.Address, r *record) {
	if !isChannelSubConn(sc) {
		return
	}
	sc.UpdateAddresses([]resolver.Address{stamp(addr, r)})
}

// stamp returns addr with r's owner token in its attributes.
func stamp(addr resolver.Address, r *record) resolver.Address {
	addr.Attributes = addr.Attributes.WithValue(ownerKey{}, r)
	return addr
}

// isChannelCC reports whether cc is the channel's own balancer.ClientConn:
// grpc's ccBalancerWrapper, or the graceful switch every channel puts
// between it and its top-level policy, which passes addresses through
// untouched. Then no parent policy sees the addresses the manager gives
// NewSubConn. Anything else, or a grpc whose types differ, reports false.
func isChannelCC(cc balancer.ClientConn) bool {
	v := reflect.ValueOf(cc)
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() {
		return false
	}
	if isGRPCType(v.Type(), "google.golang.org/grpc", "ccBalancerWrapper") {
		return true
	}
	if !isGRPCType(v.Type(), "google.golang.org/grpc/internal/balancer/gracefulswitch", "balancerWrapper") {
		return false
	}
	gsb := v.Elem().FieldByName("gsb")
	if !gsb.IsValid() || gsb.Kind() != reflect.Pointer || gsb.IsNil() {
		return false
	}
	inner := gsb.Elem().FieldByName("cc")
	if !inner.IsValid() || inner.Kind() != reflect.Interface || inner.IsNil() {
		return false
	}
	return isGRPCType(inner.Elem().Type(), "google.golang.org/grpc", "ccBalancerWrapper")
}

// isGRPCType reports whether t is a pointer to the named type of pkg.
func isGRPCType(t reflect.Type, pkg, name string) bool {
	return t.Kind() == reflect.Pointer && t.Elem().PkgPath() == pkg && t.Elem().Name() == name
}

// isChannelSubConn reports whether sc is the channel's own SubConn (grpc's
// acBalancerWrapper), not a parent's wrapper or a test fake.
func isChannelSubConn(sc balancer.SubConn) bool {
	t := reflect.TypeOf(sc)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "google.golang.org/grpc" && t.Elem().Name() == "acBalancerWrapper"
}

func recordFromContext(ctx context.Context) *record {
	info := credentials.ClientHandshakeInfoFromContext(ctx)
	if info.Attributes == nil {
		return nil
	}
	r, _ := info.Attributes.Value(ownerKey{}).(*record)
	return r
}

// defaultDial dials like grpc does for a custom-dialer address: "unix:path"
// and "unix://path" are Unix sockets, anything else is TCP host:port.
func defaultDial(ctx context.Context, addr string) (net.Conn, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		return sockowner.Dial(ctx, "unix", path)
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return sockowner.Dial(ctx, "unix", path)
	}
	return sockowner.Dial(ctx, "tcp", addr)
}

// Read error classes, recorded by the reader goroutine.
const (
	readOK = iota
	readEOF
	readReset
	readOther
)

// trackedConn is a socket owned by a subchannel. The embedded
// sockowner.Conn reports its close to the subchannel once and passes
// SyscallConn through.
type trackedConn struct {
	*sockowner.Conn

	// Initialized at creation, read-only after.
	rec           *record
	id            uint64
	local, remote string
	opened        time.Time

	sniff    h2Sniffer // touched only by the (single) reader
	goaway   atomic.Bool
	goawayCd atomic.Uint32 // GOAWAY error code, when seen
	readErr  atomic.Int32  // how the peer ended it, from read or write errors
	readMsg  atomic.Pointer[string]
	forced   atomic.Bool
	closed   atomic.Bool
}

func newTrackedConn(conn net.Conn, r *record) *trackedConn {
	c := &trackedConn{rec: r, id: nextSocketID.Add(1), opened: time.Now()}
	if a := conn.LocalAddr(); a != nil {
		c.local = a.String()
	}
	if a := conn.RemoteAddr(); a != nil {
		c.remote = a.String()
	}
	unregister := sockowner.Register(conn.LocalAddr(), conn.RemoteAddr(), sockowner.Owner{
		Manager: r.m.id, Target: r.m.target, Subchannel: r.id, Key: r.key(),
	})
	c.Conn = sockowner.Wrap(conn, func() {
		unregister()
		r.socketClosed(c, c.closeReason())
	})
	return c
}

func (c *trackedConn) ref() *trace.SocketRef {
	return &trace.SocketRef{ID: c.id, Local: c.local, Remote: c.remote}
}

// Read passes through, watching plaintext HTTP/2 frame headers for GOAWAY
// and classifying read errors.
func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.sniff.off {
		if code, ok := c.sniff.feed(b[:n]); ok {
			c.goawayCd.Store(code)
			c.goaway.Store(true)
		}
	}
	if err != nil {
		c.noteIOError(err)
	}
	return n, err
}

// Write passes through, classifying write errors: after a reset the kernel
// reports ECONNRESET once, to whichever of the reader and the writer asks
// first, and the other then sees EOF or EPIPE.
func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		c.noteIOError(err)
	}
	return n, err
}

// noteIOError records the first I/O error that says how the peer ended the
// connection.
func (c *trackedConn) noteIOError(err error) {
	if c.readErr.Load() != readOK || c.closed.Load() {
		return
	}
	kind := int32(readOther)
	switch {
	case errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
		return // the client is closing it
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		kind = readReset
	case errors.Is(err, io.EOF):
		kind = readEOF
		// The writer may have taken the reset's one ECONNRESET: the
		// connection's state says whether an RST came.
		if sockowner.ResetByPeer(c.Conn) {
			kind = readReset
		}
	}
	msg := err.Error()
	c.readMsg.Store(&msg)
	c.readErr.CompareAndSwap(readOK, kind)
}

// Close closes the socket and reports it to the owning subchannel once.
func (c *trackedConn) Close() error {
	c.closed.Store(true) // read errors from here on are the client's doing
	return c.Conn.Close()
}

// forceClose closes a socket still open after the drain timeout.
func (c *trackedConn) forceClose() {
	c.forced.Store(true)
	c.Close()
}

// closeReason says why the socket closed, for socket_close events.
func (c *trackedConn) closeReason() string {
	switch {
	case c.forced.Load():
		return "force-closed after the drain timeout"
	case c.goaway.Load():
		return fmt.Sprintf("closed after GOAWAY (code %s)", h2ErrCode(c.goawayCd.Load()))
	}
	switch c.readErr.Load() {
	case readEOF:
		return "closed by peer (EOF)"
	case readReset:
		return "reset by peer (RST)"
	case readOther:
		return "closed after read error: " + *c.readMsg.Load()
	}
	return "closed by client"
}

// lossCause classifies the loss of the connection on this socket.
func (c *trackedConn) lossCause() loss {
	if c.goaway.Load() {
		return loss{trace.KindGoAway, trace.CauseGoAway, fmt.Sprintf("server sent GOAWAY (code %s)", h2ErrCode(c.goawayCd.Load()))}
	}
	switch c.readErr.Load() {
	case readEOF:
		return loss{trace.KindConnLost, trace.CauseEOF, "socket closed by peer (EOF)"}
	case readReset:
		return loss{trace.KindConnLost, trace.CauseReset, "connection reset by peer (RST)"}
	case readOther:
		return loss{trace.KindConnLost, trace.CauseReadErr, *c.readMsg.Load()}
	}
	if c.closed.Load() {
		return loss{trace.KindConnLost, trace.CauseLocal, "socket closed by the client (keepalive timeout or transport error)"}
	}
	return loss{trace.KindGoAway, trace.CauseGoAwayInferred, "transport draining with its socket still open (GOAWAY; under TLS, subconn.Credentials reads the frames)"}
}

// h2Sniffer follows HTTP/2 frame boundaries in the server-to-client byte
// stream and reports GOAWAY frames. It turns itself off if the stream does
// not start with a SETTINGS frame (TLS, or not HTTP/2). It costs a few
// comparisons per frame.
type h2Sniffer struct {
	off    bool
	frames int
	hdr    [9]byte
	hn     int    // header bytes collected
	skip   uint32 // payload bytes left in the current frame
	ga     []byte // collected GOAWAY payload prefix (error code)
	inGA   bool
}

const (
	h2FrameSettings = 0x4
	h2FrameGoAway   = 0x7
)

// feed consumes bytes read from the server. It returns the error code of a
// GOAWAY frame once its first 8 payload bytes have been seen.
func (s *h2Sniffer) feed(p []byte) (code uint32, goaway bool) {
	for len(p) > 0 && !s.off {
		if s.skip > 0 {
			k := min(uint32(len(p)), s.skip)
			if s.inGA && len(s.ga) < 8 {
				need := min(8-len(s.ga), int(k))
				s.ga = append(s.ga, p[:need]...)
				if len(s.ga) == 8 {
					code, goaway = binary.BigEndian.Uint32(s.ga[4:8]), true
					s.inGA = false
				}
			}
			s.skip -= k
			p = p[k:]
			continue
		}
		k := copy(s.hdr[s.hn:], p)
		s.hn += k
		p = p[k:]
		if s.hn < 9 {
			return code, goaway
		}
		s.hn = 0
		length := uint32(s.hdr[0])<<16 | uint32(s.hdr[1])<<8 | uint32(s.hdr[2])
		typ := s.hdr[3]
		if s.frames == 0 && typ != h2FrameSettings {
			s.off = true // not plaintext HTTP/2 from a server
			return code, goaway
		}
		s.frames++
		s.skip = length
		if typ == h2FrameGoAway {
			if length < 8 {
				code, goaway = 0, true
			} else {
				s.inGA, s.ga = true, s.ga[:0]
			}
		}
	}
	return code, goaway
}

// h2ErrCode names an HTTP/2 error code.
func h2ErrCode(c uint32) string {
	names := [...]string{"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
		"SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
		"COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"}
	if int(c) < len(names) {
		return names[c]
	}
	return fmt.Sprintf("0x%x", c)
}
