//go:build unix

package sockowner

import "syscall"

// Inode returns the inode of a socket, as /proc/<pid>/fd shows it
// ("socket:[inode]"), or 0 if it cannot be read. An inode names a socket
// for as long as it is open, whatever its TCP state: also when the kernel
// has already dropped it from /proc/net/tcp.
func Inode(c syscall.Conn) uint64 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var ino uint64
	_ = rc.Control(func(fd uintptr) { ino = inodeOfFD(int(fd)) })
	return ino
}

func inodeOfFD(fd int) uint64 {
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) != nil {
		return 0
	}
	return uint64(st.Ino)
}
