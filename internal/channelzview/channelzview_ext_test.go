package channelzview_test

import (
	"context"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/channelzview"
	"github.com/leakproof/leakproof/internal/testing/leakzoo"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

const timeout = 10 * time.Second

func channel(t *testing.T, target string) (channelzview.Channel, bool) {
	t.Helper()
	chans, err := channelzview.Channels()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chans {
		if c.Target == target {
			return c, true
		}
	}
	return channelzview.Channel{}, false
}

// TestSeesASubchannelWithoutASocket runs a policy that makes a new SubConn
// on IDLE and forgets the old one; after the backend resets the
// connection, channelz lists the forgotten subchannel, IDLE with no
// socket, beside the one in use, and nothing once the channel is closed.
func TestSeesASubchannelWithoutASocket(t *testing.T) {
	b, err := testbackend.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	target := "passthrough:///" + b.Addr()
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"`+leakzoo.NewOnIdle+`":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	echo := echov1.NewEchoServiceClient(cc)
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "x"}, grpc.WaitForReady(true))
		return err
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	c, ok := channel(t, target)
	if !ok {
		t.Fatalf("channelz does not list %s", target)
	}
	if c.Policy != leakzoo.NewOnIdle || c.State != "READY" || len(c.Subchannels) != 1 || c.Subchannels[0].Addr != b.Addr() || c.Subchannels[0].Sockets != 1 {
		t.Fatalf("channel %+v: want %s, READY, one subchannel to %s with a socket", c, leakzoo.NewOnIdle, b.Addr())
	}

	if n := b.ResetConns(); n != 1 {
		t.Fatalf("reset %d connections, want 1", n)
	}
	deadline := time.Now().Add(timeout)
	for {
		_ = call() // one may fail on the reset connection; the next reconnects
		c, _ = channel(t, target)
		idle := 0
		for _, sc := range c.Subchannels {
			if sc.State == "IDLE" && sc.Sockets == 0 {
				idle++
			}
		}
		if len(c.Subchannels) == 2 && idle == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the reset channelz shows %+v, want the forgotten IDLE subchannel beside the new one", c.Subchannels)
		}
		time.Sleep(20 * time.Millisecond)
	}

	if byTarget, err := channelzview.Target(target); err != nil || len(byTarget) != 1 || len(byTarget[0].Subchannels) != 2 {
		t.Errorf("Target(%q) = %+v, %v; want the one channel with its two subchannels", target, byTarget, err)
	}
	cc.Close()
	// Close returns before a connection attempt in flight ends: a transport
	// that attempt made while the subchannel was torn down is closed by the
	// attempt itself (addrConn.createTransport), and channelz drops the
	// socket, then the subchannel, then the channel when it does. So the
	// channel leaves channelz soon after Close, not always by its return.
	deadline = time.Now().Add(timeout)
	for {
		c, ok := channel(t, target)
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("channelz still lists the closed channel %s after it was closed: %+v", timeout, c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
