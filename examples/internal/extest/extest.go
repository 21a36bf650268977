// Package extest runs leakproof's examples under test: it records the
// refcount trace of the whole process while an example runs, so that a test
// can check what the example did independently of what it printed.
package extest

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
)

// Run calls run (an example's main without the process) under leaktest, and
// returns what it printed and every refcount event of the process while it
// ran. The test fails if run returns an error.
func Run(t *testing.T, run func(io.Writer) error) (string, []trace.Event) {
	t.Helper()
	t.Cleanup(leaktest.Check(t))
	sub := trace.Subscribe(1<<16, nil)
	var out bytes.Buffer
	err := run(&out)
	sub.Close()
	var events []trace.Event
	for e := range sub.Events() {
		events = append(events, e)
	}
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if sub.Dropped() {
		t.Fatal("the trace subscription fell behind: the recorded trace is incomplete")
	}
	return out.String(), events
}

// Lines returns the lines of out that contain s.
func Lines(out, s string) []string {
	var found []string
	for line := range strings.Lines(out) {
		if strings.Contains(line, s) {
			found = append(found, strings.TrimSuffix(line, "\n"))
		}
	}
	return found
}

// WantLines fails the test unless out has a line containing each of want.
func WantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if len(Lines(out, w)) == 0 {
			t.Errorf("the output has no line with %q", w)
		}
	}
}

// Count returns how many events are of kind, for key if key is not "".
func Count(events []trace.Event, kind trace.Kind, key string) int {
	n := 0
	for _, e := range events {
		if e.Kind == kind && (key == "" || e.Key == key) {
			n++
		}
	}
	return n
}

// CheckReleased fails the test unless the trace checks clean, every
// subchannel it created was destroyed and every socket it opened was closed.
// It returns the number of subchannels created.
func CheckReleased(t *testing.T, events []trace.Event) int {
	t.Helper()
	rep := trace.Check(events)
	created := Count(events, trace.KindCreate, "")
	if !rep.Clean() || rep.Live != 0 || rep.Destroyed != created {
		t.Fatalf("trace not clean: %d created, %d destroyed, %d live, problems %v\n%s", created, rep.Destroyed, rep.Live, rep.Problems, Format(events))
	}
	if o, c := Count(events, trace.KindSocketOpen, ""), Count(events, trace.KindSocketClose, ""); o != c {
		t.Fatalf("%d sockets opened, %d closed\n%s", o, c, Format(events))
	}
	return created
}

// Format renders events one per line.
func Format(events []trace.Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintln(&b, e.String())
	}
	return b.String()
}
