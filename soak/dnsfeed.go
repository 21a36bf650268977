package soak

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/leakproof/leakproof/internal/dnsserver"
	"github.com/leakproof/leakproof/jsontime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	grpcdns "google.golang.org/grpc/resolver/dns"
	"google.golang.org/grpc/resolver/manual"
)

// dnsAvailable reports whether ResolverDNS can run.
const dnsAvailable = true

// DNSMinResolutionInterval is grpc's dns resolver's minimum interval
// between two resolutions of one channel during a run under ResolverDNS.
// grpc's default is 30 s, too long for faults a phase of seconds shows; the
// run lowers it with grpc's own setter (resolver/dns.SetMinResolutionInterval),
// for the whole process, and grpc has no getter to restore it with. The
// report says so.
const DNSMinResolutionInterval = time.Second

// dnsDomain is the domain of the names the channels under test resolve
// under ResolverDNS: soak-rN-main.<dnsDomain>, soak-rN-compare.<dnsDomain>.
const dnsDomain = "leakproof.test"

// Timing of the DNS answers the resolver faults become.
const (
	dnsSlow = 300 * time.Millisecond // slow answers, during resolver-error
	// dnsResolvingTimeout bounds one resolution (grpc's default is 30 s),
	// so that an unanswered query is an error within a phase.
	dnsResolvingTimeout = 2 * time.Second
)

// dnsFeed is the feed of ResolverDNS: the channels under test (main and
// compare) resolve a name each (so that each one's queries are its own)
// through grpc's dns resolver at the run's DNS server on 127.0.0.1 (r.dns);
// the backends listen on one port at 127.0.0.2, 127.0.0.3, … The resolver
// faults become DNS answers (update, reportError, phase). The run's other
// channels (churn, tls, exec) test other things and keep a manual resolver.
type dnsFeed struct {
	r *runner
	s *dnsserver.Server

	mu      sync.Mutex
	chans   map[string]*dnsChannel // by kind: kindMain, kindCompare
	base    dnsserver.Mode         // how the phase answers a good list
	errs    int                    // injected resolver errors so far, to alternate their form
	empties int                    // empty lists so far, to alternate their form
}

// dnsChannel is one channel under test's name and service config.
type dnsChannel struct {
	name string
	sc   string
}

func newDNSFeed(r *runner) (feed, error) {
	if r.dns == nil {
		return nil, errors.New("soak: resolver dns: no DNS server")
	}
	grpcdns.SetMinResolutionInterval(DNSMinResolutionInterval)
	grpcdns.SetResolvingTimeout(dnsResolvingTimeout)
	return &dnsFeed{r: r, s: r.dns, chans: map[string]*dnsChannel{}}, nil
}

func (f *dnsFeed) dial(c *client, kind, sc string, state resolver.State) (string, []grpc.DialOption, error) {
	if kind != kindMain && kind != kindCompare {
		// A manual resolver under the scheme of the target, which starts
		// with the run's prefix like every channel of the run: the
		// channel's own resolver wins over grpc's dns resolver.
		c.res = manual.NewBuilderWithScheme("dns")
		c.res.InitialState(state)
		return c.target, []grpc.DialOption{grpc.WithResolvers(c.res), grpc.WithDefaultServiceConfig(sc)}, nil
	}
	ips, err := f.r.dnsRecords(state)
	if err != nil {
		return "", nil, err
	}
	// r.prefix is dns://ADDR/soak-rN-: the target starts with it.
	name := strings.TrimPrefix(f.r.prefix, "dns://"+f.s.Addr()+"/") + kind + "." + dnsDomain
	if err := f.s.SetA(name, ips...); err != nil {
		return "", nil, fmt.Errorf("soak: %w", err)
	}
	f.mu.Lock()
	f.chans[kind] = &dnsChannel{name: name, sc: sc}
	f.mu.Unlock()
	return f.s.Target(name, f.r.dnsPort), []grpc.DialOption{grpc.WithDefaultServiceConfig(sc)}, nil
}

// update sets the A records to st's addresses, answered in the phase's
// mode. An empty list is an empty NOERROR answer and NXDOMAIN in turn.
func (f *dnsFeed) update(st resolver.State) {
	ips, err := f.r.dnsRecords(st)
	if err != nil {
		// The faults DNS cannot express are skipped (skip); a list that
		// still cannot be is the soak's own error.
		f.r.problem("soak: resolver dns: %v", err)
		return
	}
	f.mu.Lock()
	mode := f.base
	if len(ips) == 0 {
		mode = dnsserver.Empty
		if f.empties%2 == 1 {
			mode = dnsserver.NXDomain
		}
		f.empties++
	}
	for _, ch := range f.chans {
		if err == nil {
			err = f.s.SetA(ch.name, ips...)
		}
	}
	f.s.SetMode(mode)
	f.mu.Unlock()
	if err != nil {
		f.r.problem("soak: resolver dns: %v", err)
	}
}

// reportError makes every answer until the next update a SERVFAIL, or no
// answer at all (the query times out), in turn.
func (f *dnsFeed) reportError(error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mode := dnsserver.ServFail
	if f.errs%2 == 1 {
		mode = dnsserver.NoAnswer
	}
	f.errs++
	f.s.SetMode(mode)
}

// phase sets the DNS answers that last a whole phase of fault (none
// between phases): during flap the UDP answers are truncated (the client
// asks again over TCP) and a _grpc_config TXT record carries the channel's
// service config with a method config added (grpc applies a service config
// from DNS over the default one); during resolver-error the good answers are
// slow.
func (f *dnsFeed) phase(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.base = dnsserver.Answer
	if fault == FaultFlap {
		f.base = dnsserver.Truncate
	}
	f.s.SetMode(f.base)
	f.s.SetDelay(0)
	if fault == FaultResolverError {
		f.s.SetDelay(dnsSlow)
	}
	for _, ch := range f.chans {
		sc := ""
		if fault == FaultFlap {
			sc = withMethodConfig(ch.sc)
		}
		f.s.SetServiceConfig(ch.name, sc)
	}
}

// skip returns why a fault cannot run under DNS, "" if it can.
func (f *dnsFeed) skip(fault Fault) string {
	if fault == FaultOverlap {
		return "endpoints with several addresses cannot be expressed in DNS: an A record lists one address, and grpc's dns resolver makes one endpoint of each"
	}
	return ""
}

// learned returns when the channel of kind first got a DNS answer that no
// longer lists addr, at or after since: the removal counts from then.
func (f *dnsFeed) learned(kind string, addr netip.AddrPort, since time.Time) (time.Time, bool) {
	f.mu.Lock()
	ch := f.chans[kind]
	f.mu.Unlock()
	if ch == nil {
		return since, true
	}
	q, ok := f.s.FirstWithout(ch.name, addr.Addr(), since)
	return q.Time, ok
}

// report describes the DNS side of the run.
func (f *dnsFeed) report(d time.Duration) *DNSReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	rep := &DNSReport{Server: f.s.Addr(), Port: f.r.dnsPort, MinResolutionInterval: jsontime.Duration(DNSMinResolutionInterval)}
	for _, fault := range f.r.cfg.Faults {
		if why := f.skip(fault); why != "" {
			if rep.Skipped == nil {
				rep.Skipped = map[Fault]string{}
			}
			rep.Skipped[fault] = why
		}
	}
	for kind, ch := range f.chans {
		a, txt := f.s.CountOf(ch.name), f.s.CountOf(dnsserver.TXTPrefix+ch.name)
		cq := DNSQueries{Name: ch.name, Queries: a.Queries + txt.Queries, Answered: a.Answered}
		if d > 0 {
			cq.PerMinute = float64(cq.Queries) / d.Minutes()
		}
		if kind == kindMain {
			rep.Main = cq
		} else {
			rep.Compare = &cq
		}
	}
	return rep
}

// close leaves the run's DNS server to shutdown, which closes it after
// the channels.
func (f *dnsFeed) close() {}

// dnsRecords returns the A records of st: one address per endpoint, each a
// backend of the run on the DNS port.
func (r *runner) dnsRecords(st resolver.State) ([]netip.Addr, error) {
	var addrs [][]resolver.Address
	if len(st.Endpoints) > 0 {
		for _, ep := range st.Endpoints {
			addrs = append(addrs, ep.Addresses)
		}
	} else {
		for _, a := range st.Addresses {
			addrs = append(addrs, []resolver.Address{a})
		}
	}
	var ips []netip.Addr
	for _, ep := range addrs {
		if len(ep) != 1 {
			return nil, fmt.Errorf("an endpoint of %d addresses cannot be expressed in DNS", len(ep))
		}
		ap, err := netip.ParseAddrPort(ep[0].Addr)
		if err != nil || int(ap.Port()) != r.dnsPort {
			return nil, fmt.Errorf("address %q is not a backend on the DNS port %d", ep[0].Addr, r.dnsPort)
		}
		ips = append(ips, ap.Addr())
	}
	return ips, nil
}

// withMethodConfig returns service config sc with a method config added
// for a service nobody serves: a different service config that changes
// nothing the channel does.
func withMethodConfig(sc string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(sc), &m); err != nil || m == nil {
		return sc
	}
	mc, _ := m["methodConfig"].([]any)
	m["methodConfig"] = append(mc, map[string]any{
		"name":    []any{map[string]any{"service": "leakproof.soak.FromDNS"}},
		"timeout": "30s",
	})
	out, err := json.Marshal(m)
	if err != nil {
		return sc
	}
	return string(out)
}

// isMain reports whether target is the main channel's: under ResolverDNS
// r.mainTgt is its start, dns://ADDR/soak-rN-main.leakproof.test:, as the
// port is known only once the backends listen.
func (r *runner) isMain(target string) bool {
	if r.dns != nil {
		return strings.HasPrefix(target, r.mainTgt)
	}
	return target == r.mainTgt
}
