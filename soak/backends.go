package soak

import (
	"fmt"
	"net/netip"

	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
)

// fleet is the run's backends, started by startBackends and read-only
// after.
type fleet struct {
	regular  []*testbackend.Backend
	frozen   *testbackend.Backend
	resetter *testbackend.Backend
	tlsB     *testbackend.Backend
	backends []*testbackend.Backend // all, in info order
	info     []BackendInfo
	names    map[netip.AddrPort]string // backend address → name
	// dnsPort is the one port every backend listens on under ResolverDNS,
	// each at its own loopback address (A records carry no port).
	dnsPort int
	// clientCreds are the channels' credentials: insecure, or trusting the
	// run's CA under Config.TLS, through subconn.Credentials so that a
	// GOAWAY is read above TLS. untrusted trust another CA (the tls fault).
	clientCreds credentials.TransportCredentials
	untrusted   credentials.TransportCredentials
}

// startBackends starts the regular backends and the three special ones.
func (r *runner) startBackends() error {
	serverCA, err := testbackend.NewCA()
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	otherCA, err := testbackend.NewCA()
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	r.untrusted = otherCA.ClientCredentials()
	r.clientCreds = insecure.NewCredentials()
	common := []testbackend.Option{testbackend.Services(r.cfg.RegisterServices)}
	if r.cfg.TLS {
		r.clientCreds = subconn.Credentials(serverCA.ClientCredentials())
		common = append(common, testbackend.TLS(serverCA))
	}
	start := func(name, role string, opts ...testbackend.Option) (*testbackend.Backend, error) {
		opts = append(append([]testbackend.Option{testbackend.Name(name)}, common...), opts...)
		if r.cfg.Resolver == ResolverDNS {
			// 127.0.0.2, 127.0.0.3, …, all on the first one's port.
			ip := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + len(r.backends))})
			opts = append(opts, testbackend.Host(ip), testbackend.Port(r.dnsPort))
		}
		b, err := testbackend.Start(opts...)
		if err != nil {
			return nil, fmt.Errorf("soak: starting backend %s: %w", name, err)
		}
		if r.dnsPort == 0 && r.cfg.Resolver == ResolverDNS {
			r.dnsPort = int(netip.MustParseAddrPort(b.Addr()).Port())
		}
		r.backends = append(r.backends, b)
		r.info = append(r.info, BackendInfo{Name: name, Addr: b.Addr(), Role: role})
		r.names[netip.MustParseAddrPort(b.Addr())] = name
		return b, nil
	}
	for i := range r.cfg.Backends {
		b, err := start(fmt.Sprintf("b%d", i), roleRegular)
		if err != nil {
			return err
		}
		r.regular = append(r.regular, b)
	}
	if r.frozen, err = start("frozen", roleFrozen, frozenOptions...); err != nil {
		return err
	}
	if r.resetter, err = start("resetting", roleResetting, testbackend.ResetAfter(resetAfter)); err != nil {
		return err
	}
	if r.tlsB, err = start("tls", roleTLS, testbackend.TLS(serverCA)); err != nil {
		return err
	}
	return nil
}

func (r *runner) name(b *testbackend.Backend) string {
	return r.names[netip.MustParseAddrPort(b.Addr())]
}

func (r *runner) addrOf(name string) netip.AddrPort {
	for ap, n := range r.names {
		if n == name {
			return ap
		}
	}
	return netip.AddrPort{}
}

// baseState is the list between faults: every regular backend.
func (r *runner) baseState() resolver.State {
	return addrState(r.regular...)
}

func addrState(bs ...*testbackend.Backend) resolver.State {
	var st resolver.State
	for _, b := range bs {
		st.Addresses = append(st.Addresses, resolver.Address{Addr: b.Addr()})
	}
	return st
}

func endpointState(eps ...[]*testbackend.Backend) resolver.State {
	var st resolver.State
	for _, ep := range eps {
		var e resolver.Endpoint
		for _, b := range ep {
			e.Addresses = append(e.Addresses, resolver.Address{Addr: b.Addr()})
		}
		st.Endpoints = append(st.Endpoints, e)
	}
	return st
}

// frozenOptions start the frozen backend: frozen (until its phase thaws
// it), noticing the clients that leave. A test replaces them with a backend
// that holds connections until shutdown, to see the in-run checks catch it.
var frozenOptions = []testbackend.Option{testbackend.Frozen()}
