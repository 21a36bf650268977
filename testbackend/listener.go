package testbackend

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leakproof/leakproof/internal/sockowner"
)

// connTracker knows every server-side connection a Backend has open, across
// restarts, so that ResetConns, Thaw and Stats see them all.
type connTracker struct {
	accepted atomic.Int64
	// frozen is the Backend's freeze, shared by every run's listener.
	frozen atomic.Bool

	mu   sync.Mutex
	open map[*trackedConn]struct{}
}

func (t *connTracker) add(c *trackedConn) {
	t.accepted.Add(1)
	t.mu.Lock()
	t.open[c] = struct{}{}
	t.mu.Unlock()
}

func (t *connTracker) remove(c *trackedConn) {
	t.mu.Lock()
	delete(t.open, c)
	t.mu.Unlock()
}

// snapshot returns the open connections and how many of them are held.
func (t *connTracker) snapshot() (conns []*trackedConn, held int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.open {
		conns = append(conns, c)
		if c.held {
			held++
		}
	}
	return conns, held
}

// trackedConn is a server-side TCP connection. Close is idempotent in its
// bookkeeping and may be called by grpc, by the listener, by a reset and by
// the watcher of a held connection at once.
type trackedConn struct {
	*net.TCPConn
	lis   *listener
	held  bool   // never handed to grpc: no HTTP/2 is ever written
	inode uint64 // the socket's inode, 0 if unknown

	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.TCPConn.Close()
	c.once.Do(func() { c.lis.release(c) })
	return err
}

// reset closes the connection with a TCP RST instead of a FIN: with a zero
// linger the kernel discards unsent data and resets the peer.
func (c *trackedConn) reset() {
	_ = c.SetLinger(0)
	_ = c.Close()
}

// watch reads a held connection and throws the bytes away until the client
// closes or resets it, then closes it: a frozen server never answers, but
// its kernel still sees the client leave, and so must its descriptor
// table. Without the watcher a held connection whose client has gone would
// sit in CLOSE_WAIT (and then CLOSE, gone from /proc/net/tcp) until the
// backend stops.
func (c *trackedConn) watch() {
	_, _ = io.Copy(io.Discard, c.TCPConn)
	_ = c.Close()
}

// listener wraps the TCP listener of one run of a Backend. It counts and
// tracks every accepted connection, holds the ones past the connection limit
// (or all while frozen) instead of handing them to grpc, and resets
// connections on a timer.
type listener struct {
	inner      *net.TCPListener
	tracker    *connTracker
	limit      int           // served connections at once; unlimited if < 0
	resetAfter time.Duration // 0: never
	stall      bool          // StallForever: held connections are not watched
	inode      uint64        // the listening socket's inode, 0 if unknown

	// wg counts reset timers whose function runs or may still run, and the
	// watchers of held connections.
	wg sync.WaitGroup

	mu     sync.Mutex
	served int // open connections handed to grpc
	held   map[*trackedConn]struct{}
	timers map[*trackedConn]*time.Timer
	closed bool
}

func newListener(inner *net.TCPListener, t *connTracker, o *options) *listener {
	return &listener{
		inner:      inner,
		tracker:    t,
		limit:      o.connLimit,
		resetAfter: o.resetAfter,
		stall:      o.stallForever,
		inode:      sockowner.Inode(inner),
		held:       make(map[*trackedConn]struct{}),
		timers:     make(map[*trackedConn]*time.Timer),
	}
}

// Accept returns the next connection grpc may serve. Connections past the
// limit, or every connection while the backend is frozen, are kept here,
// open and silent, and Accept goes on waiting.
func (l *listener) Accept() (net.Conn, error) {
	for {
		raw, err := l.inner.AcceptTCP()
		if err != nil {
			return nil, err
		}
		c := &trackedConn{TCPConn: raw, lis: l, inode: sockowner.Inode(raw)}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = raw.Close()
			return nil, net.ErrClosed
		}
		c.held = l.tracker.frozen.Load() || (l.limit >= 0 && l.served >= l.limit)
		if c.held {
			l.held[c] = struct{}{}
			if !l.stall {
				l.wg.Add(1)
				go func() {
					defer l.wg.Done()
					c.watch()
				}()
			}
		} else {
			l.served++
		}
		l.tracker.add(c)
		if l.resetAfter > 0 {
			l.wg.Add(1)
			l.timers[c] = time.AfterFunc(l.resetAfter, func() {
				defer l.wg.Done()
				c.reset()
			})
		}
		l.mu.Unlock()
		if !c.held {
			return c, nil
		}
	}
}

// release forgets a connection that was closed.
func (l *listener) release(c *trackedConn) {
	l.tracker.remove(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.held {
		delete(l.held, c)
	} else {
		l.served--
	}
	if t, ok := l.timers[c]; ok {
		delete(l.timers, c)
		if t.Stop() {
			l.wg.Done()
		}
	}
}

// Close stops accepting and closes the held connections, which grpc does not
// know about. grpc closes the ones it serves itself.
func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	held := make([]*trackedConn, 0, len(l.held))
	for c := range l.held {
		held = append(held, c)
	}
	l.mu.Unlock()

	err := l.inner.Close()
	for _, c := range held {
		_ = c.Close()
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// stopTimers cancels the pending resets and waits for running ones and for
// the watchers of held connections. Call it once every connection of this
// listener is closed.
func (l *listener) stopTimers() {
	l.mu.Lock()
	for c, t := range l.timers {
		delete(l.timers, c)
		if t.Stop() {
			l.wg.Done()
		}
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func (l *listener) Addr() net.Addr { return l.inner.Addr() }
