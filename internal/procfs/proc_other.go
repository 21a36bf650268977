//go:build !linux

package procfs

import (
	"errors"
	"fmt"
	"runtime"
)

// errUnsupported is every reading's error outside Linux.
var errUnsupported = fmt.Errorf("file descriptors and sockets: not supported on GOOS=%s: %w", runtime.GOOS, errors.ErrUnsupported)

// FDs returns an error wrapping errors.ErrUnsupported: only Linux has /proc.
func FDs() (map[int]string, error) { return nil, errUnsupported }

// FDsOf returns an error wrapping errors.ErrUnsupported.
func FDsOf(int) (map[int]string, error) { return nil, errUnsupported }

// Sockets returns an error wrapping errors.ErrUnsupported.
func Sockets(map[uint64]struct{}) (map[uint64]Socket, error) { return nil, errUnsupported }

// NetSockets returns an error wrapping errors.ErrUnsupported.
func NetSockets() ([]Socket, error) { return nil, errUnsupported }

// Holders finds nothing outside Linux.
func Holders(map[uint64]struct{}) map[uint64]Holder { return map[uint64]Holder{} }
