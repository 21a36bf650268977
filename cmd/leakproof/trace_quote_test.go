package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc"
)

// An address is whatever the resolver or the control plane says; one
// carrying an escape sequence and a newline must reach the terminal as
// visible escapes, never as a colour change or a forged line.
func TestTraceQuotesAddressesFromOutside(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1)
	const hostile = "10.0.0.1:443\x1b[2J\nFORGED LINE"
	// The dialer sends every address to the real backend, so the hostile
	// one becomes a READY subchannel with a socket.
	dial := subconn.Dialer(func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", bs[0].Addr())
	})
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(hostile), e2e.Options{
		NoDialer: true, DialOptions: []grpc.DialOption{grpc.WithContextDialer(dial)},
	})
	c.WaitServed(bs[0].Addr())
	addr := serveAdmin(t)
	ctx := context.Background()

	check := func(what, out string) {
		t.Helper()
		if strings.Contains(out, "\x1b") || strings.Contains(out, "\nFORGED") {
			t.Errorf("%s prints the address raw:\n%s", what, out)
		}
		if !strings.Contains(out, `\x1b[2J\nFORGED`) {
			t.Errorf("%s does not show the address escaped:\n%s", what, out)
		}
	}
	code, out, errOut := runTrace(t, ctx, "", "list", "--addr", addr, "--target", c.Target)
	if code != exitOK {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	check("list", out)
	if !strings.Contains(out, `"10.0.0.1:443\x1b[2J\nFORGED LINE"`) {
		t.Errorf("list does not quote the key:\n%s", out)
	}
	code, out, errOut = runTrace(t, ctx, "", "watch", "--addr", addr, "--target", c.Target, "--from", "1", "--count", "3")
	if code != exitOK {
		t.Fatalf("watch: exit %d: %s", code, errOut)
	}
	check("watch", out)
	code, out, errOut = runTrace(t, ctx, "", "check", "--addr", addr, "--target", c.Target)
	if code != exitOK {
		t.Fatalf("check: exit %d: %s%s", code, out, errOut)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("check prints an escape:\n%s", out)
	}
	// Offline, too: the trace file's events.
	code, out, errOut = runTrace(t, ctx, traceOf(t, c.Trace.Events()...), "show", "-", "--subchannel", "1")
	if strings.Contains(out+errOut, "\x1b") {
		t.Errorf("show prints an escape (exit %d):\n%s%s", code, out, errOut)
	}
}
