package subconn

import (
	"io"
	"net"
	"testing"
)

// loopConn is the decrypted side of a secured connection, replaying an
// HTTP/2 server stream of DATA frames forever.
type loopConn struct {
	net.Conn
	stream []byte
	off    int
}

func (c *loopConn) Read(b []byte) (int, error) {
	if c.off == len(c.stream) {
		c.off = 9 + 12 // past the SETTINGS frame: DATA frames again
	}
	n := copy(b, c.stream[c.off:])
	c.off += n
	return n, nil
}

// BenchmarkSecuredRead is the cost Credentials adds to a read of the
// secured stream (frameConn's sniffer), beside the read alone; the
// plaintext path (trackedConn) is not touched by Credentials.
func BenchmarkSecuredRead(b *testing.B) {
	stream := h2frame(h2FrameSettings, make([]byte, 12))
	for range 4 {
		stream = append(stream, h2frame(0x0, make([]byte, 16384))...)
	}
	buf := make([]byte, 32<<10) // grpc's read buffer
	for _, tc := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"bare", func(c net.Conn) net.Conn { return c }},
		{"Credentials", func(c net.Conn) net.Conn { return &frameConn{Conn: c, tc: &trackedConn{}} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			conn := tc.wrap(&loopConn{stream: stream})
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := io.ReadFull(conn, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
