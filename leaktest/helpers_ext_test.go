package leaktest_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// failDeadline is how long a check that must fail polls before it reports.
	failDeadline = 150 * time.Millisecond
	// passDeadline bounds a check that must pass once a leak is released.
	passDeadline = 3 * time.Second
	// releaseAfter is when a leak is released during a passing check's poll.
	releaseAfter = 50 * time.Millisecond
)

// recordingT is a leaktest.TestingT that records what it is told instead of
// failing the test, so that a test can assert that a check fails.
type recordingT struct {
	mu      sync.Mutex
	helpers int
	errs    []string
}

func (r *recordingT) Helper() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.helpers++
}

func (r *recordingT) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingT) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// wantError asserts that exactly one error was recorded and that it holds
// every piece of evidence in want.
func (r *recordingT) wantError(t *testing.T, want ...string) string {
	t.Helper()
	errs := r.errors()
	if len(errs) != 1 {
		t.Fatalf("got %d errors, want 1:\n%s", len(errs), strings.Join(errs, "\n---\n"))
	}
	t.Logf("the report, as a user sees it:\n%s", errs[0])
	for _, w := range want {
		if !strings.Contains(errs[0], w) {
			t.Errorf("error does not mention %q:\n%s", w, errs[0])
		}
	}
	return errs[0]
}

// wantNoError asserts that nothing was recorded.
func (r *recordingT) wantNoError(t *testing.T) {
	t.Helper()
	if errs := r.errors(); len(errs) > 0 {
		t.Errorf("got %d errors, want none:\n%s", len(errs), strings.Join(errs, "\n---\n"))
	}
}

// leakyWorker is the goroutine the tests leak on purpose.
func leakyWorker(stop <-chan struct{}) { <-stop }

// listen starts a loopback listener that lives as long as the test.
func listen(t testing.TB) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	return lis
}

// connect opens a connection to lis and returns both of its ends.
func connect(t testing.TB, lis net.Listener) (client, server net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp4", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = lis.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	return client, server
}
