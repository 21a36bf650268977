package main

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/leakproof/leakproof/examples/internal/extest"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

var countRE = regexp.MustCompile(`backend-(\d) (\d+)`)

// parseCounts reads "backend-0 0, backend-1 9, backend-2 11" from the line
// labelled label.
func parseCounts(t *testing.T, out, label string) [3]int {
	t.Helper()
	lines := extest.Lines(out, label)
	if len(lines) != 1 {
		t.Fatalf("want one line with %q, got %q", label, lines)
	}
	var c [3]int
	for _, m := range countRE.FindAllStringSubmatch(lines[0], -1) {
		i, _ := strconv.Atoi(m[1])
		c[i], _ = strconv.Atoi(m[2])
	}
	return c
}

func TestRequestsGoToTheLeastLoadedBackendsAndNothingLeaks(t *testing.T) {
	out, events := extest.Run(t, run)

	if c := parseCounts(t, out, "20 streams held open:"); c != [3]int{held, 0, 0} {
		t.Errorf("streams held before the other backends were added: %v, want all on backend-0", c)
	}
	// backend-0 has 20 requests in flight: every pick compares it with a
	// backend that has fewer.
	more := parseCounts(t, out, "20 more streams:")
	if more[0] != 0 || more[1]+more[2] != held || more[1] < 5 || more[2] < 5 {
		t.Errorf("new streams by backend %v: want none on the loaded backend-0 and the rest spread over the others", more)
	}
	unary := parseCounts(t, out, "30 unary RPCs:")
	if unary[0] != 0 || unary[1]+unary[2] != 30 {
		t.Errorf("unary RPCs by backend %v: want none on the loaded backend-0", unary)
	}
	extest.WantLines(t, out, "backend-0 removed:     0 sockets to it", "3 subchannels created, 3 destroyed, trace clean")

	// The trace, recorded independently of the example: one subchannel per
	// backend, held by the policy's set; the removed backend destroyed
	// before the channel closed; everything released in the end.
	if n := extest.CheckReleased(t, events); n != 3 {
		t.Fatalf("%d subchannels created, want 3 (one per backend)\n%s", n, extest.Format(events))
	}
	var first string
	for _, e := range events {
		if e.Kind == trace.KindRef && e.Holder != "least_request" {
			t.Errorf("reference taken by %q, want the policy's set (least_request): %v", e.Holder, e)
		}
		if e.Kind == trace.KindCreate && first == "" {
			first = e.Key
		}
	}
	for _, e := range events {
		if e.Kind == trace.KindDestroy && e.Key == first {
			break
		}
		if e.Kind == trace.KindShutdown && e.Key != first {
			t.Fatalf("%s shut down before the removed backend %s was destroyed\n%s", e.Key, first, extest.Format(events))
		}
	}
	if n := extest.Count(events, trace.KindSocketOpen, ""); n < 3 {
		t.Errorf("%d sockets opened, want one per backend at least (is subconn.Dialer installed?)", n)
	}
}
