// Package procfs reads what a process holds from Linux's /proc: its open
// descriptors (/proc/<pid>/fd), the inodes of its sockets, and the TCP
// sockets of the network namespace with their states (/proc/net/tcp and
// tcp6), parsed strictly: a table line that is not a socket line is an
// error, so that a leak check fails rather than passes with sockets
// missing.
//
// It is the one reader of /proc for package leaktest, the soak and the test
// backends. Outside Linux every reading returns an error wrapping
// errors.ErrUnsupported; the parsers work everywhere.
package procfs
