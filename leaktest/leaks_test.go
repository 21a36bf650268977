package leaktest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestFindWithoutDescriptors: a baseline that could not read descriptors
// because the platform has none to read (errors.ErrUnsupported, what Take
// returns outside Linux) checks goroutines alone without complaint, but a
// socket count asked for with Backends is an error; any other reason the
// baseline failed is an error either way. The baselines are built here by
// hand, since on Linux Take reads descriptors.
func TestFindWithoutDescriptors(t *testing.T) {
	unsupported := fmt.Errorf("leaktest: file descriptors and sockets: not supported on GOOS=plan9: %w", errors.ErrUnsupported)
	failed := errors.New("leaktest: list file descriptors: permission denied")
	for _, tc := range []struct {
		err       error
		backends  []string
		wantError bool
	}{
		{unsupported, nil, false},
		{unsupported, []string{"127.0.0.1:50051"}, true},
		{failed, nil, true},
		{failed, []string{"127.0.0.1:50051"}, true},
	} {
		base := &Snapshot{goroutines: goleak.IgnoreCurrent(), err: tc.err}
		l := Find(base, Deadline(50*time.Millisecond), Backends(tc.backends...))
		if got := l != nil && slices.Contains(l.Errors, tc.err); got != tc.wantError || (!tc.wantError && l != nil) {
			t.Errorf("baseline error %q, backends %v: Find = %+v; want the baseline's error: %v", tc.err, tc.backends, l, tc.wantError)
		}
	}
}
