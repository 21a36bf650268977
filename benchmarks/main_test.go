package benchmarks

import (
	"testing"

	"github.com/leakproof/leakproof/leaktest"
)

// Benchmarks dial real backends on 127.0.0.1: everything they open must be
// closed when they end.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
