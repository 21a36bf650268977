package soak

import "context"

// TestingT is the part of testing.TB that Verify uses.
type TestingT interface {
	Helper()
	Errorf(format string, args ...any)
}

// Verify runs a soak with cfg and reports to t the error that stopped it
// or, if it leaked, its verdict naming each failed check:
//
//	func TestClientDoesNotLeak(t *testing.T) {
//		soak.Verify(t, soak.Config{Duration: 10 * time.Second, Faults: []soak.Fault{soak.FaultGoAway, soak.FaultOverlap}})
//	}
//
// It returns the result (nil if the soak could not start).
func Verify(t TestingT, cfg Config) *Result {
	t.Helper()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Errorf("%v", err)
	}
	if res != nil && !res.Pass {
		t.Errorf("%s", res.Verdict())
	}
	return res
}
