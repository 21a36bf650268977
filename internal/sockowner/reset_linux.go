package sockowner

import (
	"syscall"
	"unsafe"
)

// tcpClose is TCP_CLOSE, the first byte of struct tcp_info (tcpi_state).
const tcpClose = 7

// ResetByPeer reports whether the kernel has closed c's TCP connection
// while its descriptor is still open: the peer reset it. A socket whose
// peer only sent a FIN stays in CLOSE_WAIT until it is closed here.
//
// It tells a reset from a FIN when the error was already taken: after an
// RST the kernel reports ECONNRESET once, to whichever of the reader and
// the writer asks first, and the other then sees EOF or EPIPE.
func ResetByPeer(c syscall.Conn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var info [232]byte // struct tcp_info; only tcpi_state is read
	reset := false
	_ = rc.Control(func(fd uintptr) {
		n := uint32(len(info))
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
		reset = errno == 0 && n > 0 && info[0] == tcpClose
	})
	return reset
}
