//go:build !unix

package sockowner

import "syscall"

// Inode returns 0: socket inodes are a Unix notion.
func Inode(syscall.Conn) uint64 { return 0 }

func inodeOfFD(int) uint64 { return 0 }
