package leakzoo

import (
	"context"
	"net"
	"sync"

	"google.golang.org/grpc"
)

// An App is the application's part of a leak: what a user's client adds to
// the channel under test (the soak's Config.Load, Config.DialOptions and
// Config.Dialer).
// Each run gets its own (Entry.App), because a leak accumulates state.
type App struct {
	// Load, if set, is called in a loop on the channel under test.
	Load func(ctx context.Context, cc *grpc.ClientConn) error
	// DialOptions are added to the channel under test.
	DialOptions []grpc.DialOption
	// Dialer, if set, dials the channel's sockets.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// Release ends what the leak left behind, once the checks are done: a
	// test must not leave it to the next one.
	Release func()
}

// held is what an App leaked, kept so that Release can end it.
type held struct {
	mu   sync.Mutex
	ends []func()
	done bool
}

// add keeps end, or calls it at once if Release already ran.
func (h *held) add(end func()) {
	h.mu.Lock()
	if !h.done {
		h.ends = append(h.ends, end)
		end = nil
	}
	h.mu.Unlock()
	if end != nil {
		end()
	}
}

func (h *held) release() {
	h.mu.Lock()
	ends := h.ends
	h.ends, h.done = nil, true
	h.mu.Unlock()
	for _, end := range ends {
		end()
	}
}
