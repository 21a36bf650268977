package leakzoo

import (
	"context"
	"fmt"
	"sync/atomic"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
)

// ChannelPerCall is an application that, every few calls, makes a new
// channel to the backend that answered (a client provider that dials on
// every call), uses it once and never closes it: each one keeps its
// socket, its resolver, balancer and transport goroutines for the life of
// the process (hyperledger-labs/fabric-smart-client#1482: 104k goroutines
// in a load test). Nothing heals it, not even closing the channel under
// test: the forgotten channels are not the soak's. ForgetClose is the
// same bug in a test, for leaktest.
const ChannelPerCall = "leakzoo_channel_per_call"

// dialEvery is how many calls the application makes per channel it forgets.
const dialEvery = 25

func channelPerCall() *App {
	h := &held{}
	var calls atomic.Int64
	return &App{
		Release: h.release,
		Load: func(ctx context.Context, cc *grpc.ClientConn) error {
			var p peer.Peer
			_, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: ChannelPerCall}, grpc.Peer(&p))
			if err != nil || calls.Add(1)%dialEvery != 0 || p.Addr == nil {
				return err
			}
			c, err := grpc.NewClient("passthrough:///"+p.Addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return fmt.Errorf("leakzoo: %w", err)
			}
			h.add(func() { c.Close() }) // the bug: only Release closes it
			_, err = echov1.NewEchoServiceClient(c).Echo(ctx, &echov1.EchoRequest{Message: ChannelPerCall})
			return err
		},
	}
}

// ForgetClose is ChannelPerCall's bug in a test: it dials addr, makes one
// call and returns without closing the channel. It returns the Close the
// test forgot, for the test's own cleanup.
func ForgetClose(ctx context.Context, addr string) (release func(), err error) {
	c, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("leakzoo: %w", err)
	}
	release = func() { c.Close() }
	if _, err := echov1.NewEchoServiceClient(c).Echo(ctx, &echov1.EchoRequest{Message: ChannelPerCall}); err != nil {
		release()
		return nil, fmt.Errorf("leakzoo: %w", err)
	}
	return release, nil
}
