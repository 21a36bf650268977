//go:build !linux

package leaktest_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/leaktest"
)

func TestDescriptorsUnsupported(t *testing.T) {
	snap, err := leaktest.Take()
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "not supported on GOOS="+runtime.GOOS) {
		t.Errorf("Take() error = %v, want one wrapping errors.ErrUnsupported that names GOOS", err)
	}
	if snap == nil {
		t.Fatal("Take() returned no snapshot; the goroutine baseline must still be usable")
	}
	if _, err := leaktest.SocketsTo("127.0.0.1:50051"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("SocketsTo error = %v, want errors.ErrUnsupported", err)
	}

	// Goroutines alone are checked without complaint...
	rt := &recordingT{}
	leaktest.Check(rt, leaktest.Deadline(failDeadline))()
	rt.wantNoError(t)

	// ...but a socket count that was asked for and cannot be made is an error.
	rt = &recordingT{}
	leaktest.Check(rt, leaktest.Deadline(failDeadline), leaktest.Backends("127.0.0.1:50051"))()
	rt.wantError(t, "not supported on GOOS="+runtime.GOOS)
}
