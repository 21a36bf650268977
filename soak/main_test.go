package soak_test

import (
	"testing"

	"github.com/leakproof/leakproof/leaktest"
)

// The package checks itself: every soak, test and example here must leave
// goroutines and descriptors as it found them.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
