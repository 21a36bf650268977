package leaktest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// pollerOnce starts the runtime's network poller, which keeps an epoll
// descriptor and an eventfd for the life of the process from the first
// timer, pipe or socket on. Starting it before the first baseline keeps
// those two out of every report.
var pollerOnce sync.Once

func startPoller() {
	r, w, err := os.Pipe()
	if err == nil {
		r.Close()
		w.Close()
	}
}

// readProc reads this process's descriptors and the TCP sockets they point
// to.
func readProc() (map[int]string, map[uint64]Socket, error) {
	pollerOnce.Do(startPoller)
	fds, err := readFDs()
	if err != nil {
		return nil, nil, err
	}
	inodes := make(map[uint64]struct{})
	for _, target := range fds {
		if ino, ok := socketInode(target); ok {
			inodes[ino] = struct{}{}
		}
	}
	socks, err := readSockets(inodes)
	if err != nil {
		return nil, nil, err
	}
	return fds, socks, nil
}

func readFDs() (map[int]string, error) {
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("leaktest: list file descriptors: %w", err)
	}
	defer dir.Close()
	self := int(dir.Fd()) // the listing's own descriptor
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("leaktest: list file descriptors: %w", err)
	}
	fds := make(map[int]string, len(names))
	buf := make([]byte, 512)
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd == self {
			continue
		}
		path := "/proc/self/fd/" + name
		n, err := syscall.Readlink(path, buf)
		if err != nil {
			continue // closed since the listing
		}
		target := string(buf[:n])
		if n == len(buf) { // perhaps cut short: a long path
			if target, err = os.Readlink(path); err != nil {
				continue
			}
		}
		fds[fd] = target
	}
	return fds, nil
}

// readSockets returns the TCP sockets among inodes. The tables list every
// socket in the network namespace, so they are joined on the inodes this
// process holds. The kernel writes the tables as they are read, and walking
// its hash tables costs milliseconds even when they are nearly empty, so
// reading stops once every inode is found: tcp6 is not read at all when the
// process holds IPv4 sockets only.
func readSockets(inodes map[uint64]struct{}) (map[uint64]Socket, error) {
	socks := make(map[uint64]Socket, len(inodes))
	for _, name := range [...]string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		if len(socks) == len(inodes) {
			break
		}
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return nil, fmt.Errorf("leaktest: read TCP sockets: %w", err)
		}
		err = scanNetTCP(f, binary.NativeEndian, func(s Socket) bool {
			if _, ok := inodes[s.Inode]; ok {
				socks[s.Inode] = s
			}
			return len(socks) < len(inodes)
		})
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("leaktest: read %s: %w", name, err)
		}
	}
	return socks, nil
}

// readNetSockets reads every TCP socket of the network namespace.
func readNetSockets() ([]Socket, error) {
	var out []Socket
	for _, name := range [...]string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("leaktest: read TCP sockets: %w", err)
		}
		err = scanNetTCP(f, binary.NativeEndian, func(s Socket) bool {
			out = append(out, s)
			return true
		})
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("leaktest: read %s: %w", name, err)
		}
	}
	return out, nil
}
