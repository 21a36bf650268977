package dnsserver_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// listenAll listens on one port at every address in ips, serving the health
// service, and returns the port.
func listenAll(t *testing.T, ips ...netip.Addr) (int, map[netip.Addr]*grpc.Server) {
	t.Helper()
	for range 10 {
		lns, port, err := listenSamePort(ips)
		if err != nil {
			continue
		}
		srvs := make(map[netip.Addr]*grpc.Server)
		for i, ln := range lns {
			srv := grpc.NewServer()
			healthpb.RegisterHealthServer(srv, health.NewServer())
			go srv.Serve(ln)
			t.Cleanup(srv.Stop)
			srvs[ips[i]] = srv
		}
		return port, srvs
	}
	t.Fatal("no port free on every address")
	return 0, nil
}

func listenSamePort(ips []netip.Addr) ([]net.Listener, int, error) {
	var lns []net.Listener
	port := 0
	for _, ip := range ips {
		ln, err := net.Listen("tcp4", netip.AddrPortFrom(ip, uint16(port)).String())
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, 0, err
		}
		port = ln.Addr().(*net.TCPAddr).Port
		lns = append(lns, ln)
	}
	return lns, port, nil
}

// A whole channel through grpc's dns resolver: the TXT record chooses
// round_robin, RPCs reach both backends, and when the record drops one and
// that backend goes away, the channel's re-resolution gets the new answer.
func TestChannel(t *testing.T) {
	port, srvs := listenAll(t, ip2, ip3)
	s := startServer(t)
	if err := s.SetA(name, ip2, ip3); err != nil {
		t.Fatal(err)
	}
	s.SetServiceConfig(name, `{"loadBalancingConfig":[{"round_robin":{}}]}`)
	cc, err := grpc.NewClient(s.Target(name, port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// seen makes n RPCs and returns the backends that answered. An RPC in
	// flight when a backend stops fails (UNAVAILABLE) and is not counted.
	seen := func(n int) map[string]bool {
		out := make(map[string]bool)
		for range n {
			var p peer.Peer
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true))
			switch {
			case status.Code(err) == codes.Unavailable:
			case err != nil:
				t.Fatal(err)
			default:
				out[p.Addr.String()] = true
			}
		}
		return out
	}
	// round_robin (from DNS) spreads RPCs over both once both are READY.
	for ctx.Err() == nil && len(seen(10)) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	if got := seen(10); len(got) != 2 {
		t.Fatalf("RPCs reached %v, want both backends (round_robin from the TXT record)", got)
	}

	removed := time.Now()
	if err := s.SetA(name, ip2); err != nil {
		t.Fatal(err)
	}
	srvs[ip3].Stop() // the lost connection makes the channel re-resolve
	// RPCs leave 127.0.0.3 as soon as its subchannel leaves READY, which
	// can be before the re-resolution that connection loss asks for has
	// been answered: wait for both.
	want := fmt.Sprintf("%v:%d", ip2, port)
	var (
		got      map[string]bool
		answered bool
	)
	for ctx.Err() == nil {
		got = seen(5)
		_, answered = s.FirstWithout(name, ip3, removed)
		if answered && len(got) == 1 && got[want] {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !(len(got) == 1 && got[want]) {
		t.Errorf("RPCs reach %v after 127.0.0.3 left DNS and stopped, want only %v", got, want)
	}
	if !answered {
		t.Errorf("no answer without 127.0.0.3 recorded: %+v", s.Queries())
	}
}
