package dnsserver_test

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/dnsserver"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// These tests run grpc-go's own dns resolver against the server. The
// channel side is a recording resolver.ClientConn (a fake: it shows exactly
// what the resolver hands a channel); e2e_ext_test.go runs whole channels.

const (
	name        = "backends.leakproof.test"
	backendPort = 50051
	waitTimeout = 5 * time.Second
)

var (
	ip2 = netip.MustParseAddr("127.0.0.2")
	ip3 = netip.MustParseAddr("127.0.0.3")
)

// event is one call of the resolver into the channel.
type event struct {
	state *resolver.State
	err   error
}

// recordingCC is the channel side of a resolver: it records what it gets.
type recordingCC struct{ events chan event }

func (c *recordingCC) UpdateState(s resolver.State) error {
	c.send(event{state: &s})
	return nil
}
func (c *recordingCC) ReportError(err error)         { c.send(event{err: err}) }
func (c *recordingCC) NewAddress([]resolver.Address) {}
func (c *recordingCC) ParseServiceConfig(js string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{Config: rawConfig{js: js}}
}

func (c *recordingCC) send(e event) {
	select {
	case c.events <- e:
	default: // a test that stopped reading does not block the resolver
	}
}

// rawConfig is a service config as the resolver found it, unparsed.
type rawConfig struct {
	serviceconfig.Config
	js string
}

func startServer(t *testing.T) *dnsserver.Server {
	t.Helper()
	s, err := dnsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// resolve builds grpc's dns resolver for name on s.
func resolve(t *testing.T, s *dnsserver.Server) (*recordingCC, resolver.Resolver) {
	t.Helper()
	u, err := url.Parse(s.Target(name, backendPort))
	if err != nil {
		t.Fatal(err)
	}
	cc := &recordingCC{events: make(chan event, 100)}
	r, err := resolver.Get("dns").Build(resolver.Target{URL: *u}, cc, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return cc, r
}

func next(t *testing.T, cc *recordingCC) event {
	t.Helper()
	select {
	case e := <-cc.events:
		return e
	case <-time.After(waitTimeout):
		t.Fatal("the resolver reported nothing")
		return event{}
	}
}

func nextState(t *testing.T, cc *recordingCC) resolver.State {
	t.Helper()
	e := next(t, cc)
	if e.state == nil {
		t.Fatalf("the resolver reported error %v, want a state", e.err)
	}
	return *e.state
}

func addrs(s resolver.State) string {
	var out []string
	for _, ep := range s.Endpoints {
		for _, a := range ep.Addresses {
			out = append(out, a.Addr)
		}
	}
	return strings.Join(out, " ")
}

func hostPort(ips ...netip.Addr) string {
	var out []string
	for _, ip := range ips {
		out = append(out, fmt.Sprintf("%v:%d", ip, backendPort))
	}
	return strings.Join(out, " ")
}

func TestRecordsChange(t *testing.T) {
	s := startServer(t)
	if err := s.SetA(name, ip2, ip3); err != nil {
		t.Fatal(err)
	}
	cc, r := resolve(t, s)
	if got, want := addrs(nextState(t, cc)), hostPort(ip2, ip3); got != want {
		t.Fatalf("first resolution: %q, want %q", got, want)
	}
	if _, ok := s.FirstWithout(name, ip3, time.Time{}); ok {
		t.Fatal("FirstWithout found an answer without 127.0.0.3 before it was removed")
	}

	removed := time.Now()
	if err := s.SetA(name, ip2); err != nil {
		t.Fatal(err)
	}
	r.ResolveNow(resolver.ResolveNowOptions{})
	if got, want := addrs(nextState(t, cc)), hostPort(ip2); got != want {
		t.Fatalf("after the removal: %q, want %q", got, want)
	}
	q, ok := s.FirstWithout(name, ip3, removed)
	if !ok {
		t.Fatalf("no answer without 127.0.0.3 recorded; queries: %+v", s.Queries())
	}
	if q.Time.Before(removed) || !q.Lists(ip2) || q.Rcode != "NOERROR" {
		t.Errorf("first answer without 127.0.0.3: %+v", q)
	}
	// Two resolutions: A and AAAA each (no _grpc_config record asked for
	// under this name: that is another name).
	if c := s.CountOf(name); c.Answered != 2 || c.Queries < 4 {
		t.Errorf("CountOf(%s) = %+v, want 2 answered A queries of at least 4", name, c)
	}
}

func TestDuplicateRecords(t *testing.T) {
	s := startServer(t)
	if err := s.SetA(name, ip2, ip2, ip3); err != nil {
		t.Fatal(err)
	}
	cc, _ := resolve(t, s)
	st := nextState(t, cc)
	if got, want := addrs(st), hostPort(ip2, ip2, ip3); got != want {
		t.Fatalf("resolved %q, want %q (a repeated record is a second endpoint)", got, want)
	}
}

// An empty NOERROR answer and NXDOMAIN both reach the channel as an empty
// list, not as an error: grpc's resolver treats "no such host" as no
// addresses.
func TestEmptyAndNXDomain(t *testing.T) {
	for _, m := range []dnsserver.Mode{dnsserver.Empty, dnsserver.NXDomain} {
		t.Run(m.String(), func(t *testing.T) {
			s := startServer(t)
			if err := s.SetA(name, ip2); err != nil {
				t.Fatal(err)
			}
			s.SetMode(m)
			cc, _ := resolve(t, s)
			st := nextState(t, cc)
			if len(st.Endpoints) != 0 {
				t.Fatalf("resolved %q, want nothing", addrs(st))
			}
			q, ok := s.FirstWithout(name, ip2, time.Time{})
			if !ok || q.Mode != m {
				t.Fatalf("FirstWithout = %+v, %v; want an answer in mode %v", q, ok, m)
			}
		})
	}
}

// SERVFAIL and no answer at all reach the channel as errors; grpc's resolver
// then retries on its own, with backoff, and recovers.
func TestErrorsAndRecovery(t *testing.T) {
	for _, m := range []dnsserver.Mode{dnsserver.ServFail, dnsserver.NoAnswer} {
		t.Run(m.String(), func(t *testing.T) {
			s := startServer(t)
			if err := s.SetA(name, ip2); err != nil {
				t.Fatal(err)
			}
			s.SetMode(m)
			start := time.Now()
			cc, _ := resolve(t, s)
			e := next(t, cc)
			if e.err == nil {
				t.Fatalf("resolved %q, want an error", addrs(*e.state))
			}
			if m == dnsserver.NoAnswer && time.Since(start) < resolvingTimeout/2 {
				t.Errorf("error %v after %v, before any timeout", e.err, time.Since(start))
			}
			for _, q := range s.Queries() {
				if q.Answered() {
					t.Errorf("query %+v answered in mode %v", q, m)
				}
			}
			s.SetMode(dnsserver.Answer)
			for {
				e := next(t, cc)
				if e.state != nil {
					if got, want := addrs(*e.state), hostPort(ip2); got != want {
						t.Fatalf("after recovery: %q, want %q", got, want)
					}
					return
				}
			}
		})
	}
}

func TestSlowAnswer(t *testing.T) {
	const delay = 300 * time.Millisecond
	s := startServer(t)
	if err := s.SetA(name, ip2); err != nil {
		t.Fatal(err)
	}
	s.SetDelay(delay)
	start := time.Now()
	cc, _ := resolve(t, s)
	if got, want := addrs(nextState(t, cc)), hostPort(ip2); got != want {
		t.Fatalf("resolved %q, want %q", got, want)
	}
	if el := time.Since(start); el < delay {
		t.Errorf("resolved after %v, before the %v delay", el, delay)
	}
}

// A truncated UDP answer makes the client ask again over TCP: forced
// (Truncate), and because the answer is larger than the client's UDP size.
func TestTruncation(t *testing.T) {
	many := make([]netip.Addr, 100)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)})
	}
	for _, tc := range []struct {
		desc  string
		mode  dnsserver.Mode
		addrs []netip.Addr
	}{
		{"forced", dnsserver.Truncate, []netip.Addr{ip2, ip3}},
		{"large", dnsserver.Answer, many},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s := startServer(t)
			if err := s.SetA(name, tc.addrs...); err != nil {
				t.Fatal(err)
			}
			s.SetMode(tc.mode)
			cc, _ := resolve(t, s)
			if got, want := addrs(nextState(t, cc)), hostPort(tc.addrs...); got != want {
				t.Fatalf("resolved %q, want %q", got, want)
			}
			var udpTC, tcp bool
			for _, q := range s.Queries() {
				if q.Type != "A" {
					continue
				}
				udpTC = udpTC || (q.Net == "udp" && q.TC)
				tcp = tcp || (q.Net == "tcp" && !q.TC && len(q.Answer) == len(tc.addrs))
			}
			if !udpTC || !tcp {
				t.Fatalf("want a truncated UDP answer and a full TCP one; queries: %+v", s.Queries())
			}
		})
	}
}

func TestServiceConfigTXT(t *testing.T) {
	s := startServer(t)
	if err := s.SetA(name, ip2); err != nil {
		t.Fatal(err)
	}
	rr := `{"loadBalancingConfig":[{"round_robin":{}}]}`
	s.SetServiceConfig(name, rr)
	cc, r := resolve(t, s)
	if got := configOf(nextState(t, cc)); got != rr {
		t.Fatalf("service config %q, want %q", got, rr)
	}

	// Longer than one TXT string (255 bytes): split and joined again.
	long := `{"loadBalancingConfig":[{"pick_first":{}}],"methodConfig":[{"name":[{"service":"` + strings.Repeat("x", 300) + `"}]}]}`
	s.SetServiceConfig(name, long)
	r.ResolveNow(resolver.ResolveNowOptions{})
	if got := configOf(nextState(t, cc)); got != long {
		t.Fatalf("service config %q, want %q", got, long)
	}

	s.SetServiceConfig(name, "")
	r.ResolveNow(resolver.ResolveNowOptions{})
	if got := configOf(nextState(t, cc)); got != "" {
		t.Fatalf("service config %q after its removal, want none", got)
	}
}

func configOf(s resolver.State) string {
	if s.ServiceConfig == nil {
		return ""
	}
	c, _ := s.ServiceConfig.Config.(rawConfig)
	return c.js
}

func TestBadInput(t *testing.T) {
	s := startServer(t)
	if err := s.SetA(name, netip.MustParseAddr("::1")); err == nil {
		t.Error("SetA accepted an IPv6 address")
	}
	if got := dnsserver.Mode(42).String(); got != "Mode(42)" {
		t.Errorf("Mode(42).String() = %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
