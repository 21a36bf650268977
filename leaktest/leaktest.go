package leaktest

// TestingT is the part of testing.TB that the checks use.
type TestingT interface {
	Helper()
	Errorf(format string, args ...any)
}

// Check takes a baseline now and returns a function that reports to t, when
// called, every goroutine, file descriptor and socket to Backends that is
// not back at the baseline by the deadline:
//
//	defer leaktest.Check(t, leaktest.Backends(lis.Addr().String()))()
//
// If the test releases resources in t.Cleanup functions, register the check
// first so that it runs last: t.Cleanup(leaktest.Check(t)).
func Check(t TestingT, options ...Option) func() {
	t.Helper()
	base, _ := Take() // VerifyNone reports a failure to read /proc
	return func() {
		t.Helper()
		VerifyNone(t, base, options...)
	}
}

// VerifyNone reports to t every goroutine, file descriptor and socket to
// Backends that is not back at base by the deadline. It polls, and returns as
// soon as everything is back. It only formats what Find returns.
func VerifyNone(t TestingT, base *Snapshot, options ...Option) {
	t.Helper()
	for _, msg := range Find(base, options...).Messages() {
		t.Errorf("%s", msg)
	}
}
