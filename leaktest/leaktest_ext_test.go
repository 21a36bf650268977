package leaktest_test

import (
	"testing"
	"time"

	"github.com/leakproof/leakproof/leaktest"
	"go.uber.org/goleak"
)

func TestCheckReportsLeakedGoroutine(t *testing.T) {
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(failDeadline))
	stop := make(chan struct{})
	defer close(stop)
	go leakyWorker(stop)
	verify()
	// goleak's report names the goroutine and shows its stack.
	rt.wantError(t, "goroutines leaked", "leaktest_test.leakyWorker", "chan receive", "helpers_ext_test.go")
	if rt.helpers == 0 {
		t.Error("Check never called t.Helper")
	}
}

func TestCheckPassesWhenGoroutineExitsWhilePolling(t *testing.T) {
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(passDeadline))
	stop := make(chan struct{})
	go leakyWorker(stop)
	time.AfterFunc(releaseAfter, func() { close(stop) })
	start := time.Now()
	verify()
	rt.wantNoError(t)
	if d := time.Since(start); d >= passDeadline {
		t.Errorf("check took %v: it should return once the goroutine exits", d)
	}
}

func TestGoroutineOptionsReachGoleak(t *testing.T) {
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(failDeadline),
		leaktest.GoroutineOptions(goleak.IgnoreTopFunction("github.com/leakproof/leakproof/leaktest_test.leakyWorker")))
	stop := make(chan struct{})
	defer close(stop)
	go leakyWorker(stop)
	verify()
	rt.wantNoError(t)
}

func TestGoroutinesRunningAtTheBaselineAreNotLeaks(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	go leakyWorker(stop)
	rt := &recordingT{}
	leaktest.Check(rt, leaktest.Deadline(failDeadline))()
	rt.wantNoError(t)
}

func TestVerifyNoneNilBaseline(t *testing.T) {
	rt := &recordingT{}
	leaktest.VerifyNone(rt, nil)
	rt.wantError(t, "needs a baseline from Take")
}

func TestBackendsRejectsHostNames(t *testing.T) {
	rt := &recordingT{}
	leaktest.Check(rt, leaktest.Deadline(failDeadline), leaktest.Backends("localhost:50051"))()
	rt.wantError(t, `backend "localhost:50051"`, "want IP:port")
	if _, err := leaktest.SocketsTo("localhost:50051"); err == nil {
		t.Error(`SocketsTo("localhost:50051") = nil error, want one`)
	}
}
