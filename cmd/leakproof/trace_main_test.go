package main

import (
	"testing"

	"github.com/leakproof/leakproof/leaktest"
)

// TestMain runs every test of the command (soak and trace) under leaktest.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
