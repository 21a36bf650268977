package main

import (
	"context"
	"crypto/tls"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/admin"
	"github.com/leakproof/leakproof/balancer/guard"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/testing/leakzoo"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// leakOverTLS starts a channel whose guarded child policy forgets the
// subchannel of bs[1] when the resolver drops it, waits for the guard's
// orphan report, and serves leakproof's admin service beside grpc's
// channelz (RegisterAll) on a TLS-only port. It returns the channel, the
// backends, the orphan event, the admin address and the PKI.
func leakOverTLS(t *testing.T) (c *e2e.Client, bs []*testbackend.Backend, leaked trace.Event, addr string, p *testPKI) {
	t.Helper()
	t.Cleanup(leaktest.Check(t))
	bs = e2e.StartBackends(t, 2)
	cfg := `{"childPolicy":[{"` + leakzoo.ForgetRemoved + `":{}}],"orphans":"report","orphanTimeout":"50ms"}`
	c = e2e.Dial(t, e2e.ServiceConfig(guard.Name, cfg), e2e.AddrState(e2e.Addrs(bs)...), e2e.Options{})
	c.WaitServed(e2e.Addrs(bs)...)
	// The leaky child forgets bs[1]'s subchannel when the resolver drops it.
	c.R.UpdateState(e2e.AddrState(bs[0].Addr()))
	c.WaitServed(bs[0].Addr())
	evs := c.Trace.WaitFor(t, "the orphan report", func(ev []trace.Event) bool {
		for _, e := range ev {
			if e.Kind == trace.KindOrphan {
				return true
			}
		}
		return false
	})
	for _, e := range evs {
		if e.Kind == trace.KindOrphan {
			leaked = e
		}
	}

	p = newTestPKI(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{p.serverCert}})))
	cleanup, err := admin.RegisterAll(s)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	t.Cleanup(func() { s.Stop(); cleanup() })
	return c, bs, leaked, lis.Addr().String(), p
}

// An operator reaches a TLS-only admin port (leakproof's service beside
// grpc's channelz, as RegisterAll serves them) and finds, for the
// subchannel a leaky policy forgot, who holds it, its socket, and the
// channelz ids to look it up in grpc's own tooling.
func TestOperatorFindsALeakOverTLSWithItsChannelzIDs(t *testing.T) {
	c, bs, leaked, addr, p := leakOverTLS(t)
	tlsArgs := []string{"--addr", addr, "--ca", p.caFile, "--server-name", "admin.internal"}
	ctx := context.Background()

	// list: the leaked subchannel, its holder, its socket and channelz ids.
	code, out, errOut := runTrace(t, ctx, "", append([]string{"list", "--target", c.Target}, tlsArgs...)...)
	if code != exitOK {
		t.Fatalf("list over TLS: exit %d: %s", code, errOut)
	}
	row := regexp.MustCompile(`(?m)^#` + itoa(leaked.Subchannel) + `\s+(\d+)\s+\d+\s+\S+\s+` + regexp.QuoteMeta(bs[1].Addr()) + `\s+READY\s+1\s+` + regexp.QuoteMeta(leaked.Holder) + `\s`).FindStringSubmatch(out)
	if row == nil {
		t.Fatalf("list lacks subchannel #%d to %s, READY, held by %s, with a channelz id:\n%s", leaked.Subchannel, bs[1].Addr(), leaked.Holder, out)
	}
	sock := regexp.MustCompile(`(?m)^#` + itoa(leaked.Subchannel) + `\s+\d+\s+(\d+)\s+127\.0\.0\.1:\d+\s+` + regexp.QuoteMeta(bs[1].Addr()) + `\s`).FindStringSubmatch(out)
	if sock == nil {
		t.Fatalf("list lacks the socket of #%d to %s with its channelz id:\n%s", leaked.Subchannel, bs[1].Addr(), out)
	}
	if !regexp.MustCompile(`(?m)^\d+\s+\S+\s+-\s+2\s+0\s+2/0\s+0\s+1\s`).MatchString(out) {
		t.Errorf("list's manager line does not show 2 created, 1 orphan:\n%s", out)
	}

	// check: the orphan problem, with the same ids.
	code, out, errOut = runTrace(t, ctx, "", append([]string{"check", "--target", c.Target}, tlsArgs...)...)
	if code != exitProblem {
		t.Fatalf("check over TLS: exit %d, want 1:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"orphan: subchannel #" + itoa(leaked.Subchannel) + " " + bs[1].Addr(),
		"channelz subchannel " + row[1] + " (channel ",
		"holders [" + leaked.Holder + "]",
		"socket ",
		"(channelz " + sock[1] + ") 127.0.0.1:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check lacks %q:\n%s", want, out)
		}
	}

	// watch: the orphan event, replayed, over TLS.
	wctx, cancel := context.WithTimeout(ctx, e2e.LongTimeout)
	defer cancel()
	code, out, errOut = runTrace(t, wctx, "", append([]string{"watch", "--target", c.Target, "--from", "1", "--subchannel", itoa(leaked.Subchannel), "--count", "4"}, tlsArgs...)...)
	if code != exitOK || !strings.Contains(out, " create ") {
		t.Fatalf("watch over TLS: exit %d:\n%s%s", code, out, errOut)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
