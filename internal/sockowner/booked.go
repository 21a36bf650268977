package sockowner

import (
	"context"
	"net"
	"syscall"
)

// DialBooked dials like Dial and calls book with the inode of each socket
// it creates (see Inode), as soon as the socket exists and before it
// connects: a caller that books descriptors by inode then owns the socket
// for the whole dial, not only once Dial returns. On an error, the sockets
// it booked are already closed.
func DialBooked(ctx context.Context, network, addr string, book func(inode uint64)) (net.Conn, error) {
	d := *tcpDialer
	d.ControlContext = func(_ context.Context, _, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			if ino := inodeOfFD(int(fd)); ino != 0 {
				book(ino)
			}
		})
	}
	return d.DialContext(ctx, network, addr)
}
