package sockowner

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
)

// tcpDialer dials with the OS's TCP keepalive settings, like grpc's own
// dialer.
var tcpDialer = &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}}

// Dial dials network ("tcp" or "unix") addr as grpc's default dialer does.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return tcpDialer.DialContext(ctx, network, addr)
}

// Conn is a socket whose close is reported once: onClose runs after the
// first Close of the underlying connection, whatever the number of Close
// calls. It passes SyscallConn through, which grpc's channelz needs of a TCP
// connection.
type Conn struct {
	net.Conn
	onClose func()
	once    sync.Once
}

// Wrap returns conn, reporting its close to onClose once.
func Wrap(conn net.Conn, onClose func()) *Conn {
	return &Conn{Conn: conn, onClose: onClose}
}

// Close closes the connection and runs onClose the first time.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.onClose)
	return err
}

// SyscallConn exposes the raw socket of the wrapped connection.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("connection does not expose a raw socket")
}
