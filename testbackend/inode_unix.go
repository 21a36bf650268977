//go:build unix

package testbackend

import (
	"syscall"
)

// socketInode returns the inode of a socket, as /proc/<pid>/fd shows it
// ("socket:[inode]"), or 0 if it cannot be read.
func socketInode(c syscall.Conn) uint64 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var ino uint64
	_ = rc.Control(func(fd uintptr) {
		var st syscall.Stat_t
		if syscall.Fstat(int(fd), &st) == nil {
			ino = uint64(st.Ino)
		}
	})
	return ino
}
