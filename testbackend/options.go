package testbackend

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// An Option configures a Backend at Start.
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	name         string
	port         int
	host         netip.Addr // 127.0.0.1 when unset
	keepalive    keepalive.ServerParameters
	resetAfter   time.Duration
	connLimit    int // served connections open at once; unlimited if < 0
	frozen       bool
	stallForever bool
	ca           *CA
	serverOpts   []grpc.ServerOption
	services     func(*grpc.Server)
}

func defaultOptions() options {
	return options{connLimit: -1}
}

// listenIP returns the address to listen on.
func (o *options) listenIP() net.IP {
	if o.host.IsValid() {
		return net.IP(o.host.AsSlice())
	}
	return net.IPv4(127, 0, 0, 1)
}

func (o *options) validate() error {
	if o.port < 0 || o.port > 65535 {
		return fmt.Errorf("testbackend: port %d out of range", o.port)
	}
	if o.host.IsValid() && !(o.host.Is4() && o.host.IsLoopback()) {
		return fmt.Errorf("testbackend: host %v is not an IPv4 loopback address (127.0.0.0/8)", o.host)
	}
	if o.resetAfter < 0 {
		return fmt.Errorf("testbackend: negative ResetAfter %v", o.resetAfter)
	}
	return nil
}

// Name sets the name the backend reports in every response. The default is
// its address.
func Name(name string) Option {
	return optionFunc(func(o *options) { o.name = name })
}

// Host makes the backend listen on another IPv4 loopback address, such as
// 127.0.0.2, instead of 127.0.0.1: backends behind one DNS name listen on
// one port at distinct addresses (Linux routes all of 127.0.0.0/8 to lo).
// Any other address is an error at Start.
func Host(ip netip.Addr) Option {
	return optionFunc(func(o *options) { o.host = ip })
}

// Port makes the backend listen on 127.0.0.1:port instead of a port the
// kernel picks. Restart always reuses the port the backend first got.
func Port(port int) Option {
	return optionFunc(func(o *options) { o.port = port })
}

// Keepalive sets the server's keepalive parameters. A MaxConnectionAge of
// tens of milliseconds makes the server send GOAWAY on every connection that
// often — a GOAWAY storm; MaxConnectionAgeGrace bounds how long a connection
// may drain after it.
func Keepalive(kp keepalive.ServerParameters) Option {
	return optionFunc(func(o *options) { o.keepalive = kp })
}

// ResetAfter resets (TCP RST) every accepted connection d after it was
// accepted, whatever it is doing then. Zero, the default, never does.
func ResetAfter(d time.Duration) Option {
	return optionFunc(func(o *options) { o.resetAfter = d })
}

// ConnLimit makes the backend behave like a server at its connection limit
// (gunicorn's gthread worker at worker_connections): while k connections are
// being served, every further connection is accepted at the TCP level and
// then held open without a single HTTP/2 byte — no settings, no GOAWAY, no
// close. A held connection is never served later, even when a slot frees
// up; it is closed when its client closes or resets it (the backend reads
// and discards what the client sends, as a kernel's receive queue would,
// and so notices the client leave), when Thaw or ResetConns resets it, or
// when the backend stops. ConnLimit(0) holds every connection, like Frozen,
// but Thaw does not lift a limit. A negative k means no limit, the default.
func ConnLimit(k int) Option {
	return optionFunc(func(o *options) {
		if k < 0 {
			k = -1
		}
		o.connLimit = k
	})
}

// Frozen starts the backend frozen, as Freeze leaves it: it accepts TCP
// connections and never speaks HTTP/2 on any of them, so a client's
// connection attempt can only time out. Thaw ends the freeze.
func Frozen() Option {
	return optionFunc(func(o *options) { o.frozen = true })
}

// StallForever makes held connections (Frozen, Freeze, ConnLimit) stay open
// and unread until the backend stops or ResetConns resets them: the backend
// never notices a client leave, and Thaw serves new connections again but
// leaves the held ones as they are. It models a server stalled for good,
// whose descriptors pile up in CLOSE_WAIT, and is how a test proves that a
// check catches a backend that holds connections until shutdown.
func StallForever() Option {
	return optionFunc(func(o *options) { o.stallForever = true })
}

// TLS serves with a certificate for 127.0.0.1 issued by ca. Clients that use
// ca.ClientCredentials complete the handshake; clients that trust any other
// CA fail it.
func TLS(ca *CA) Option {
	return optionFunc(func(o *options) { o.ca = ca })
}

// Services registers more services on the backend's grpc.Server, beside
// the echo and health services, each time it is made (at Start and at
// every Restart). A nil register does nothing.
func Services(register func(*grpc.Server)) Option {
	return optionFunc(func(o *options) { o.services = register })
}

// ServerOptions adds options to the grpc.Server, for example a stats
// handler. Creds and KeepaliveParams are set by TLS and Keepalive; adding
// them here too is undefined.
func ServerOptions(opts ...grpc.ServerOption) Option {
	return optionFunc(func(o *options) { o.serverOpts = append(o.serverOpts, opts...) })
}
