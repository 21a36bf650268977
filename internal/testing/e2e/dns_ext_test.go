package e2e_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	_ "github.com/leakproof/leakproof/balancer/guard"
	_ "github.com/leakproof/leakproof/balancer/pickfirst"
	_ "github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/dnsserver"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
)

const dnsName = "backends.leakproof.test"

// connBook is a client stats.Handler that counts the channel's open
// transports per backend address: grpc reports ConnEnd after the socket is
// closed.
type connBook struct {
	mu     sync.Mutex
	open   map[string]int
	closed map[string]time.Time // when the last transport to the address ended
}

func newConnBook() *connBook {
	return &connBook{open: map[string]int{}, closed: map[string]time.Time{}}
}

type connKey struct{}

func (b *connBook) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connKey{}, info.RemoteAddr.String())
}
func (b *connBook) HandleConn(ctx context.Context, s stats.ConnStats) {
	addr, _ := ctx.Value(connKey{}).(string)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch s.(type) {
	case *stats.ConnBegin:
		b.open[addr]++
	case *stats.ConnEnd:
		b.open[addr]--
		if b.open[addr] == 0 {
			b.closed[addr] = time.Now()
		}
	}
}
func (b *connBook) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (b *connBook) HandleRPC(context.Context, stats.RPCStats)                       {}

func (b *connBook) openTo(addr string) (int, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open[addr], b.closed[addr]
}

// dnsChannel is one channel under test, with its own DNS server (so its
// queries are its own) listing the same backends.
type dnsChannel struct {
	desc  string
	dns   *dnsserver.Server
	cc    *grpc.ClientConn
	conns *connBook
}

func dialDNS(t *testing.T, desc, serviceConfig string, port int, ips []netip.Addr) *dnsChannel {
	t.Helper()
	s, err := dnsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.SetA(dnsName, ips...); err != nil {
		t.Fatal(err)
	}
	c := &dnsChannel{desc: desc, dns: s, conns: newConnBook()}
	c.cc, err = grpc.NewClient(s.Target(dnsName, port),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithContextDialer(subconn.Dialer(nil)),
		grpc.WithStatsHandler(c.conns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.cc.Close() })
	return c
}

// startDNSBackends starts n backends on one port at 127.0.0.2, 127.0.0.3, …
func startDNSBackends(t *testing.T, n int) (int, []netip.Addr) {
	t.Helper()
	for range 10 {
		var ips []netip.Addr
		port, ok := 0, true
		for i := range n {
			ip := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)})
			b, err := testbackend.Start(testbackend.Host(ip), testbackend.Port(port), testbackend.Name(ip.String()))
			if err != nil {
				ok = false
				break
			}
			t.Cleanup(b.Close)
			if port == 0 {
				_, p, _ := splitPort(b.Addr())
				port = p
			}
			ips = append(ips, ip)
		}
		if ok {
			return port, ips
		}
	}
	t.Fatal("no port free at every address")
	return 0, nil
}

func splitPort(addr string) (netip.Addr, int, error) {
	ap, err := netip.ParseAddrPort(addr)
	return ap.Addr(), int(ap.Port()), err
}

// load keeps unary RPCs flowing on c until ctx ends.
func load(ctx context.Context, wg *sync.WaitGroup, c *dnsChannel) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := echov1.NewEchoServiceClient(c.cc)
		for ctx.Err() == nil {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			client.Echo(rctx, &echov1.EchoRequest{Message: "x"}, grpc.WaitForReady(true))
			cancel()
			time.Sleep(5 * time.Millisecond)
		}
	}()
}

// TestDNSRemovalReleased: three backends behind a DNS name, one removed
// from DNS while it stays healthy and RPCs flow. grpc's dns resolver asks
// DNS again only when a policy asks it to; with reresolveInterval
// leakproof's policies ask, and the removed backend's socket closes within
// reresolveInterval + grpc's minimum resolution interval (lowered to
// dnsMinResolution here) + the drain. grpc's round_robin never asks: the
// socket stays open.
func TestDNSRemovalReleased(t *testing.T) {
	const interval = time.Second
	bound := interval + dnsMinResolution + 2*time.Second // drain of short RPCs, and slack for a loaded machine
	port, ips := startDNSBackends(t, 3)
	re := fmt.Sprintf(`{"reresolveInterval":%q}`, interval)
	chans := []struct {
		c       *dnsChannel
		release bool
	}{
		{dialDNS(t, "leakproof_round_robin+reresolveInterval", e2e.ServiceConfig("leakproof_round_robin", re), port, ips), true},
		{dialDNS(t, "leakproof_guard(round_robin)+reresolveInterval", e2e.ServiceConfig("leakproof_guard", fmt.Sprintf(`{"childPolicy":[{"round_robin":{}}],"reresolveInterval":%q}`, interval)), port, ips), true},
		{dialDNS(t, "leakproof_round_robin", e2e.ServiceConfig("leakproof_round_robin", ""), port, ips), false},
		{dialDNS(t, "round_robin", e2e.ServiceConfig("round_robin", ""), port, ips), false},
	}
	removed := fmt.Sprintf("%v:%d", ips[2], port)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, ch := range chans {
		load(ctx, &wg, ch.c)
	}
	deadline := time.Now().Add(e2e.LongTimeout)
	for _, ch := range chans {
		for n, _ := ch.c.conns.openTo(removed); n == 0; n, _ = ch.c.conns.openTo(removed) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never connected to %s", ch.c.desc, removed)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	start := time.Now()
	for _, ch := range chans {
		if err := ch.c.dns.SetA(dnsName, ips[:2]...); err != nil {
			t.Fatal(err)
		}
	}
	watch := bound + 3*time.Second
	time.Sleep(watch)
	for _, ch := range chans {
		n, closedAt := ch.c.conns.openTo(removed)
		q, answered := ch.c.dns.FirstWithout(dnsName, ips[2], start)
		queries := len(ch.c.dns.Queries())
		switch {
		case ch.release && n != 0:
			t.Errorf("%s: %d sockets to %s still open %v after its removal from DNS (first answer without it: %v); bound %v", ch.c.desc, n, removed, watch, answered, bound)
		case ch.release && closedAt.Sub(start) > bound:
			t.Errorf("%s: released %s %v after its removal from DNS, bound %v", ch.c.desc, removed, closedAt.Sub(start), bound)
		case ch.release:
			t.Logf("%s: removed from DNS at +0s, first answer without it at +%v, sockets closed at +%v; %d DNS queries in %v",
				ch.c.desc, q.Time.Sub(start).Round(time.Millisecond), closedAt.Sub(start).Round(time.Millisecond), queries, time.Since(start).Round(time.Second))
		case n == 0:
			t.Errorf("%s released %s without reresolveInterval: the test no longer shows what it is for (first answer without it: %v)", ch.c.desc, removed, answered)
		default:
			t.Logf("%s: %d sockets to %s still open %v after its removal from DNS (DNS asked again: %v; %d queries in all)", ch.c.desc, n, removed, watch, answered, queries)
		}
	}
}

// TestReresolveKeepsNoChannelBusy: the re-resolution timer is no RPC. A
// channel with reresolveInterval and no RPCs still goes IDLE at grpc's idle
// timeout, which closes the policy and stops the timer: DNS is not asked
// again.
func TestReresolveKeepsNoChannelBusy(t *testing.T) {
	const idle = 500 * time.Millisecond
	port, ips := startDNSBackends(t, 2)
	s, err := dnsserver.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetA(dnsName, ips...); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(s.Target(dnsName, port),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(e2e.ServiceConfig("leakproof_round_robin", `{"reresolveInterval":"1s"}`)),
		grpc.WithIdleTimeout(idle))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	if _, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	for st := cc.GetState(); st != connectivity.Idle; st = cc.GetState() {
		if !cc.WaitForStateChange(ctx, st) {
			t.Fatalf("channel still %v after %v with no RPC, idle timeout %v", st, e2e.LongTimeout, idle)
		}
	}
	n := len(s.Queries())
	time.Sleep(dnsMinResolution + 2*time.Second)
	if m := len(s.Queries()); m != n {
		t.Fatalf("%d DNS queries while the channel was IDLE", m-n)
	}
}
