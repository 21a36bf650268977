package leaktest

import (
	"strings"
	"testing"

	"github.com/leakproof/leakproof/internal/procfs"
)

// TestStartPollerLeavesNoDescriptor: the pipe that starts the runtime's
// poller is closed again before startPoller returns; only the poller's own
// descriptors may stay.
func TestStartPollerLeavesNoDescriptor(t *testing.T) {
	before, err := procfs.FDs()
	if err != nil {
		t.Fatal(err)
	}
	startPoller()
	after, err := procfs.FDs()
	if err != nil {
		t.Fatal(err)
	}
	for fd, target := range after {
		if strings.HasPrefix(target, "pipe:") && before[fd] != target {
			t.Errorf("fd %d -> %s left open by startPoller", fd, target)
		}
	}
}
