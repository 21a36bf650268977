//go:build !unix

package testbackend

import "syscall"

// socketInode returns 0: socket inodes are a Unix notion.
func socketInode(syscall.Conn) uint64 { return 0 }
