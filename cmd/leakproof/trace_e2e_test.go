package main

import (
	"bytes"
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/admin"
	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
)

// serveAdmin starts a gRPC server on 127.0.0.1 with the admin service
// registered, as a user's process would, and returns its address.
func serveAdmin(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	admin.Register(s)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// syncBuffer is a bytes.Buffer safe to write from a running command while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var eventLine = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{6} seq=\d+ `)

func TestTraceLiveCommandsOverARealConnection(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(e2e.Addrs(bs)...), e2e.Options{})
	c.WaitServed(e2e.Addrs(bs)...)
	addr := serveAdmin(t)
	ctx := context.Background()

	t.Run("list", func(t *testing.T) {
		code, out, errOut := runTrace(t, ctx, "", "list", "--addr", addr, "--target", c.Target)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for _, want := range []string{"ID", "HOLDERS", "READY", "endpoint{" + bs[0].Addr() + "}", "SUBCHANNEL", "2 subchannel(s) in 1 manager(s)"} {
			if !strings.Contains(out, want) {
				t.Errorf("list lacks %q:\n%s", want, out)
			}
		}
		for _, b := range bs {
			if strings.Count(out, b.Addr()) < 3 { // key, holder, socket remote
				t.Errorf("list names %s %d times, want key, holder and socket:\n%s", b.Addr(), strings.Count(out, b.Addr()), out)
			}
		}
		code, out, _ = runTrace(t, ctx, "", "list", "--addr", addr, "--target", c.Target, "--json")
		var resp adminv1.ListSubchannelsResponse
		if err := protojson.Unmarshal([]byte(out), &resp); code != exitOK || err != nil || len(resp.GetSubchannels()) != 2 {
			t.Fatalf("list --json: exit %d, %v, %d subchannels\n%s", code, err, len(resp.GetSubchannels()), out)
		}
	})

	t.Run("watch --count", func(t *testing.T) {
		code, out, errOut := runTrace(t, ctx, "", "watch", "--addr", addr, "--from", "1", "--target", c.Target, "--count", "5")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 5 {
			t.Fatalf("%d lines, want 5:\n%s", len(lines), out)
		}
		for _, l := range lines {
			if !eventLine.MatchString(l) {
				t.Errorf("line %q is not an event line", l)
			}
		}
		if !strings.Contains(lines[0], "manager_open") || !strings.Contains(out, " create ") {
			t.Errorf("the replay does not start with the channel's manager_open and creates:\n%s", out)
		}
		code, out, _ = runTrace(t, ctx, "", "watch", "--addr", addr, "--from", "1", "--target", c.Target, "--count", "7", "--json")
		evs, err := trace.Read(strings.NewReader(out))
		if code != exitOK || err != nil || len(evs) != 7 || evs[0].Target != c.Target {
			t.Fatalf("watch --json: exit %d, %v, %d events\n%s", code, err, len(evs), out)
		}
	})

	t.Run("watch until cancelled", func(t *testing.T) {
		// A live tail (no replay) of one subchannel, stopped as Ctrl-C would.
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var out, errOut syncBuffer
		done := make(chan int)
		go func() {
			done <- traceRun(wctx, []string{"watch", "--addr", addr, "--key", bs[1].Addr()}, strings.NewReader(""), &out, &errOut)
		}()
		deadline := time.Now().Add(e2e.LongTimeout)
		for i := 0; !strings.Contains(out.String(), " destroy"); i++ {
			if time.Now().After(deadline) {
				t.Fatalf("no destroy line for %s:\n%s\n%s", bs[1].Addr(), out.String(), errOut.String())
			}
			// Remove and re-add bs[1] until the watcher (subscribing
			// asynchronously) has seen a whole removal.
			c.R.UpdateState(e2e.AddrState(bs[0].Addr()))
			c.WaitServed(bs[0].Addr())
			c.R.UpdateState(e2e.AddrState(e2e.Addrs(bs)...))
			c.WaitServed(e2e.Addrs(bs)...)
		}
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Fatalf("exit %d after cancel: %s", code, errOut.String())
			}
		case <-time.After(e2e.LongTimeout):
			t.Fatal("watch did not stop when cancelled")
		}
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if !eventLine.MatchString(l) || !strings.Contains(l, bs[1].Addr()) || !strings.Contains(l, "target=") {
				t.Errorf("line %q: want an event of %s with its target", l, bs[1].Addr())
			}
		}
	})

	t.Run("check", func(t *testing.T) {
		code, out, errOut := runTrace(t, ctx, "", "check", "--addr", addr, "--target", c.Target)
		if code != exitOK || !strings.Contains(out, "2 subchannel(s) alive") || !strings.HasSuffix(strings.TrimSpace(out), ": clean") {
			t.Fatalf("check of a healthy channel: exit %d\n%s%s", code, out, errOut)
		}
	})
}

func TestTraceCheckAddrNamesASubchannelWhoseSocketOutlivesShutdown(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	c := e2e.Dial(t, e2e.ServiceConfig(pickfirst.Name, `{"drainTimeout": "1h"}`), e2e.AddrState(bs[0].Addr()), e2e.Options{})
	c.WaitServed(bs[0].Addr())
	addr := serveAdmin(t)
	ctx := context.Background()

	// A held stream keeps b0's socket open after its subchannel is shut down.
	holdCtx, endHold := context.WithCancel(ctx)
	defer endHold()
	hold, err := c.Echo.Hold(holdCtx, &echov1.HoldRequest{Label: "drain"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Recv(); err != nil {
		t.Fatal(err)
	}
	c.R.UpdateState(e2e.AddrState(bs[1].Addr()))
	c.WaitServed(bs[1].Addr())
	shut := c.Trace.WaitFor(t, "b0's shutdown", func(ev []trace.Event) bool {
		for _, e := range ev {
			if e.Kind == trace.KindShutdown {
				return true
			}
		}
		return false
	})
	var id uint64
	for _, e := range shut {
		if e.Kind == trace.KindShutdown {
			id = e.Subchannel
		}
	}

	// Within the default grace period it is draining, not leaked.
	code, out, errOut := runTrace(t, ctx, "", "check", "--addr", addr, "--target", c.Target)
	if code != exitOK || !strings.Contains(out, "1 draining") {
		t.Fatalf("check within the grace period: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runTrace(t, ctx, "", "check", "--addr", addr, "--target", c.Target, "--grace", "1ns")
	if code != exitProblem {
		t.Fatalf("check --grace 1ns: exit %d, want 1\n%s%s", code, out, errOut)
	}
	want := "sockets_open_after_shutdown: subchannel #" + strconv.FormatUint(id, 10) + " " + bs[0].Addr()
	if !strings.Contains(out, want) || !strings.Contains(out, "shutdown 0->0") || !strings.Contains(out, "->"+bs[0].Addr()+" open") {
		t.Fatalf("check --grace 1ns output lacks %q, the shutdown event or the socket:\n%s", want, out)
	}

	endHold()
	deadline := time.Now().Add(e2e.LongTimeout)
	for {
		code, out, _ = runTrace(t, ctx, "", "check", "--addr", addr, "--target", c.Target, "--grace", "1ns")
		if code == exitOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still a problem after the stream ended:\n%s", out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTraceLiveCommandsReportConnectionErrors(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	// A port nobody listens on.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := lis.Addr().String()
	lis.Close()
	// A gRPC server without the admin service.
	lis, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	other := lis.Addr().String()

	for _, tc := range []struct {
		addr, want string
	}{
		{refused, "cannot reach the admin service at " + refused},
		{other, "does not serve leakproof.admin.v1.AdminService"},
	} {
		for _, args := range [][]string{
			{"list", "--addr", tc.addr},
			{"watch", "--addr", tc.addr},
			{"check", "--addr", tc.addr},
		} {
			code, _, errOut := runTrace(t, context.Background(), "", args...)
			if code != exitError || !strings.Contains(errOut, tc.want) {
				t.Errorf("trace %q: exit %d, %q; want 2 and %q", args, code, errOut, tc.want)
			}
		}
	}
}
