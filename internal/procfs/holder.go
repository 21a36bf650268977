package procfs

import (
	"fmt"
	"net/netip"
)

// Holder is a process that holds a socket.
type Holder struct {
	PID     int
	Command string // its command line, arguments separated by spaces
}

// String formats h as "process 123 (sleep 60)".
func (h Holder) String() string { return fmt.Sprintf("process %d (%s)", h.PID, h.Command) }

// HeldElsewhere returns, by inode, the ESTABLISHED TCP connections of the
// network namespace to a remote address that remote accepts (every one if
// remote is nil) and that this process holds no descriptor of: a child that
// inherited a socket keeps its connection after this process closes it.
// The namespace is read before this process's descriptors, so that a
// socket opened between the two readings is in neither.
func HeldElsewhere(remote func(netip.AddrPort) bool) (map[uint64]Socket, error) {
	all, err := NetSockets()
	if err != nil {
		return nil, err
	}
	fds, err := FDs()
	if err != nil {
		return nil, err
	}
	mine := SocketInodes(fds)
	out := map[uint64]Socket{}
	for _, s := range all {
		if s.State != TCPEstablished || s.Inode == 0 || (remote != nil && !remote(s.Remote)) {
			continue
		}
		if _, ok := mine[s.Inode]; !ok {
			out[s.Inode] = s
		}
	}
	return out, nil
}
