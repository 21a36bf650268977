package subconn

import (
	"context"
	"net"
	"syscall"

	"google.golang.org/grpc/credentials"
)

// Credentials returns creds wrapped so that, on the sockets Dialer owns, a
// GOAWAY is read above the security layer: under TLS, Dialer sees only
// ciphertext and a lost connection that drained with its socket open is
// goaway_inferred; through Credentials the decrypted HTTP/2 frames are
// watched as on plaintext, and the cause is goaway, with the server's error
// code. An RST is told from the socket under TLS with or without it; a
// peer that closes TLS cleanly (close_notify, then FIN) is peer_closed
// through it, and goaway_inferred without it (the socket still reads
// fine when the TLS stream ends). Use it with Dialer:
//
//	grpc.WithTransportCredentials(subconn.Credentials(credentials.NewTLS(cfg))),
//	grpc.WithContextDialer(subconn.Dialer(nil)),
//
// Connections whose socket Dialer did not dial are handshaken by creds
// unchanged, and so is the server side. Credentials(nil) is nil, which
// grpc.NewClient refuses with its own error.
func Credentials(creds credentials.TransportCredentials) credentials.TransportCredentials {
	if creds == nil {
		return nil // wrapped, grpc would call the nil credentials and panic
	}
	return &frameCreds{TransportCredentials: creds}
}

type frameCreds struct {
	credentials.TransportCredentials
}

// ClientHandshake runs the wrapped handshake and, when rawConn is a socket
// Dialer owns, watches the frames read from the secured connection.
func (c *frameCreds) ClientHandshake(ctx context.Context, authority string, rawConn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, rawConn)
	if err != nil {
		return conn, info, err
	}
	tc, ok := rawConn.(*trackedConn)
	if !ok || conn == rawConn {
		return conn, info, err // not ours, or no security layer: Dialer reads the frames
	}
	return &frameConn{Conn: conn, tc: tc}, info, nil
}

// Clone returns a copy that wraps a clone of the wrapped credentials.
func (c *frameCreds) Clone() credentials.TransportCredentials {
	return &frameCreds{TransportCredentials: c.TransportCredentials.Clone()}
}

// frameConn is the secured connection of a tracked socket: it feeds what it
// reads to a sniffer of its own and reports a GOAWAY, and how the secured
// stream ended, to the socket.
type frameConn struct {
	net.Conn
	tc    *trackedConn
	sniff h2Sniffer // touched only by the (single) reader
}

func (c *frameConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.sniff.off {
		if code, ok := c.sniff.feed(b[:n]); ok {
			c.tc.goawayCd.Store(code)
			c.tc.goaway.Store(true)
		}
	}
	if err != nil {
		// A TLS close_notify ends the stream with io.EOF while the socket
		// under it still reads fine: the peer closed it all the same.
		c.tc.noteIOError(err)
	}
	return n, err
}

// SyscallConn reaches the socket under the security layer, as grpc's TLS
// credentials' own connections do (channelz reads socket options there).
func (c *frameConn) SyscallConn() (syscall.RawConn, error) { return c.tc.SyscallConn() }
