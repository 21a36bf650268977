//go:build !linux

package sockowner

import "syscall"

// ResetByPeer reports false: the TCP state is read on Linux only.
func ResetByPeer(syscall.Conn) bool { return false }
