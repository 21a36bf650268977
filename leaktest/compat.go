package leaktest

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/leakproof/leakproof/internal/procfs"
)

// Sockets returns the TCP sockets this process holds, listeners included,
// sorted by remote and then local address.
func Sockets() ([]Socket, error) {
	_, socks, err := readProc()
	if err != nil {
		return nil, err
	}
	list := make([]Socket, 0, len(socks))
	for _, s := range socks {
		list = append(list, socketOf(s))
	}
	slices.SortFunc(list, func(a, b Socket) int {
		return cmp.Or(a.Remote.Compare(b.Remote), a.Local.Compare(b.Local), cmp.Compare(a.Inode, b.Inode))
	})
	return list, nil
}

// NetSockets returns every TCP socket in this process's network namespace,
// whichever process holds it, listeners included.
func NetSockets() ([]Socket, error) {
	socks, err := procfs.NetSockets()
	if err != nil {
		return nil, fmt.Errorf("leaktest: %w", err)
	}
	out := make([]Socket, len(socks))
	for i, s := range socks {
		out[i] = socketOf(s)
	}
	return out, nil
}

// TCPState is the state of a TCP socket, numbered as the Linux kernel numbers
// it in /proc/net/tcp.
type TCPState = procfs.TCPState

// The TCP states, with the kernel's numbers.
const (
	TCPEstablished = procfs.TCPEstablished
	TCPSynSent     = procfs.TCPSynSent
	TCPSynRecv     = procfs.TCPSynRecv
	TCPFinWait1    = procfs.TCPFinWait1
	TCPFinWait2    = procfs.TCPFinWait2
	TCPTimeWait    = procfs.TCPTimeWait
	TCPClose       = procfs.TCPClose
	TCPCloseWait   = procfs.TCPCloseWait
	TCPLastAck     = procfs.TCPLastAck
	TCPListen      = procfs.TCPListen
	TCPClosing     = procfs.TCPClosing
	TCPNewSynRecv  = procfs.TCPNewSynRecv
)
