package procfs

import (
	"strconv"
	"strings"
)

// SocketInode returns the inode of a socket descriptor's target,
// "socket:[123]". Anything else, a target cut short included, is not a
// socket.
func SocketInode(target string) (uint64, bool) {
	s, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	ino, err := strconv.ParseUint(s, 10, 64)
	return ino, err == nil
}

// SocketInodes returns the inodes of the sockets among fds, as FDs returns
// them.
func SocketInodes(fds map[int]string) map[uint64]struct{} {
	inodes := make(map[uint64]struct{})
	for _, target := range fds {
		if ino, ok := SocketInode(target); ok {
			inodes[ino] = struct{}{}
		}
	}
	return inodes
}

// HeldSockets returns the TCP sockets this process holds a descriptor of,
// listeners included, by inode.
func HeldSockets() (map[uint64]Socket, error) {
	fds, err := FDs()
	if err != nil {
		return nil, err
	}
	return Sockets(SocketInodes(fds))
}
