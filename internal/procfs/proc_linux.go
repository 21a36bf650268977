package procfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// FDs returns this process's open descriptors, each with its target as
// readlink of /proc/self/fd/N reports it. The descriptor that lists the
// directory is left out.
func FDs() (map[int]string, error) { return readFDs("/proc/self/fd") }

// FDsOf returns the open descriptors of process pid, like FDs.
func FDsOf(pid int) (map[int]string, error) {
	return readFDs("/proc/" + strconv.Itoa(pid) + "/fd")
}

func readFDs(dirName string) (map[int]string, error) {
	dir, err := os.Open(dirName)
	if err != nil {
		return nil, fmt.Errorf("list file descriptors: %w", err)
	}
	defer dir.Close()
	self := -1
	if dirName == "/proc/self/fd" {
		self = int(dir.Fd()) // the listing's own descriptor
	}
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list file descriptors: %w", err)
	}
	fds := make(map[int]string, len(names))
	buf := make([]byte, 512)
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd == self {
			continue
		}
		path := dirName + "/" + name
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

// tables are the kernel's TCP tables of this process's network namespace.
var tables = [...]string{"/proc/self/net/tcp", "/proc/self/net/tcp6"}

// Sockets returns the TCP sockets among inodes, by inode. The tables list
// every socket in the network namespace, so they are joined on the inodes
// asked for. The kernel writes the tables as they are read, and walking its
// hash tables costs milliseconds even when they are nearly empty, so
// reading stops once every inode is found: tcp6 is not read at all when the
// inodes are IPv4 sockets only.
func Sockets(inodes map[uint64]struct{}) (map[uint64]Socket, error) {
	socks := make(map[uint64]Socket, len(inodes))
	for _, name := range tables {
		if len(socks) == len(inodes) {
			break
		}
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return nil, fmt.Errorf("read TCP sockets: %w", err)
		}
		err = scanNetTCP(f, binary.NativeEndian, func(s Socket) bool {
			if _, ok := inodes[s.Inode]; ok {
				socks[s.Inode] = s
			}
			return len(socks) < len(inodes)
		})
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	return socks, nil
}

// NetSockets returns every TCP socket of the network namespace, whichever
// process holds it, listeners included.
func NetSockets() ([]Socket, error) {
	var out []Socket
	for _, name := range tables {
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read TCP sockets: %w", err)
		}
		err = scanNetTCP(f, binary.NativeEndian, func(s Socket) bool {
			out = append(out, s)
			return true
		})
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	return out, nil
}

// Holders finds the process other than this one that holds each socket of
// inodes, among the processes this one may read: its pid and command line.
// A socket no other process holds is left out.
func Holders(inodes map[uint64]struct{}) map[uint64]Holder {
	out := map[uint64]Holder{}
	if len(inodes) == 0 {
		return out
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		fds, err := FDsOf(pid)
		if err != nil {
			continue
		}
		for ino := range SocketInodes(fds) {
			if _, want := inodes[ino]; !want {
				continue
			}
			if _, found := out[ino]; found {
				continue
			}
			cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			out[ino] = Holder{PID: pid, Command: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))}
		}
	}
	return out
}
