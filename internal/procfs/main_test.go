package procfs_test

import (
	"testing"

	"github.com/leakproof/leakproof/leaktest"
)

// The readers open and close descriptors of their own: every test must
// leave goroutines and descriptors as it found them.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
