//go:build !linux

package procfs_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/internal/procfs"
)

func TestReadersUnsupported(t *testing.T) {
	_, errFDs := procfs.FDs()
	_, errOf := procfs.FDsOf(1)
	_, errSocks := procfs.Sockets(nil)
	_, errNet := procfs.NetSockets()
	_, errHeld := procfs.HeldSockets()
	for _, err := range []error{errFDs, errOf, errSocks, errNet, errHeld} {
		if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "not supported on GOOS="+runtime.GOOS) {
			t.Errorf("error %v, want one wrapping errors.ErrUnsupported that names GOOS", err)
		}
	}
}
