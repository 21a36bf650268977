package leaktest

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeM stands in for *testing.M: its Run is the whole "test run".
type fakeM func() int

func (m fakeM) Run() int { return m() }

// blockUntil is the goroutine these tests leak on purpose.
func blockUntil(stop <-chan struct{}) { <-stop }

// runMain runs VerifyTestMain with os.Exit and stderr stubbed out and returns
// the exit code and what was written.
func runMain(t *testing.T, m fakeM, options ...Option) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := -1
	exit, stderr := osExit, osStderr
	defer func() { osExit, osStderr = exit, stderr }()
	osExit = func(c int) { code = c }
	osStderr = &out
	VerifyTestMain(m, append([]Option{Deadline(50 * time.Millisecond)}, options...)...)
	return code, out.String()
}

func TestVerifyTestMainReportsLeakedGoroutine(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	code, out := runMain(t, func() int {
		go blockUntil(stop)
		return 0
	})
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	for _, want := range []string{"leaktest: errors on successful test run:", "goroutines leaked", "leaktest.blockUntil"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, out)
		}
	}
}

func TestVerifyTestMainKeepsFailingExitCode(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	code, out := runMain(t, func() int {
		go blockUntil(stop)
		return 3
	})
	if code != 3 || out != "" {
		t.Errorf("exit code %d, stderr %q; want 3 and no report after a failed run", code, out)
	}
}

func TestVerifyTestMainCleanRun(t *testing.T) {
	code, out := runMain(t, func() int { return 0 })
	if code != 0 || out != "" {
		t.Errorf("exit code %d, stderr %q; want 0 and nothing", code, out)
	}
}
