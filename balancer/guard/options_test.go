package guard

import (
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/policy"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/balancer"
)

// TestWrapOptionsMeanWhatTheConfigMeans: each of Wrap's options resolves
// to what the same value in leakproof_guard's config means: zero is the
// default, as omitting the field is (WithDrainTimeout(0) once turned the
// drain bound off, which no config can), and values past a field's limits
// are held within them.
func TestWrapOptionsMeanWhatTheConfigMeans(t *testing.T) {
	pf := balancer.Get("pick_first")
	for _, tc := range []struct {
		name string
		opts []Option
		want options
	}{
		{"none", nil, options{orphanTimeout: subconn.DefaultOrphanTimeout, orphans: subconn.ReclaimOrphans, drainTimeout: subconn.DefaultDrainTimeout, traceRing: subconn.DefaultTraceRing}},
		{"zero", []Option{WithOrphanTimeout(0), WithDrainTimeout(0), WithTraceRing(0), WithReresolveInterval(0)},
			options{orphanTimeout: subconn.DefaultOrphanTimeout, orphans: subconn.ReclaimOrphans, drainTimeout: subconn.DefaultDrainTimeout, traceRing: 0}},
		{"negative", []Option{WithOrphanTimeout(-time.Second), WithDrainTimeout(-time.Second), WithTraceRing(-1), WithReresolveInterval(-time.Second)},
			options{orphanTimeout: subconn.DefaultOrphanTimeout, orphans: subconn.ReclaimOrphans, drainTimeout: subconn.DefaultDrainTimeout, traceRing: subconn.DefaultTraceRing}},
		{"past the limits", []Option{WithOrphanTimeout(25 * time.Hour), WithDrainTimeout(25 * time.Hour), WithTraceRing(policy.MaxTraceRingSize + 1), WithReresolveInterval(time.Millisecond)},
			options{orphanTimeout: policy.MaxOrphanTimeout, orphans: subconn.ReclaimOrphans, drainTimeout: policy.MaxDrainTimeout, traceRing: policy.MaxTraceRingSize, reresolve: policy.MinReresolveInterval}},
		{"set", []Option{WithOrphanTimeout(time.Second), WithOrphans(subconn.ReportOrphans), WithDrainTimeout(2 * time.Second), WithTraceRing(3), WithReresolveInterval(48 * time.Hour)},
			options{orphanTimeout: time.Second, orphans: subconn.ReportOrphans, drainTimeout: 2 * time.Second, traceRing: 3, reresolve: policy.MaxReresolveInterval}},
	} {
		var got options
		switch w := Wrap(pf, tc.opts...).(type) {
		case wrapped:
			got = w.o
		case wrappedParser:
			got = w.o
		default:
			t.Fatalf("Wrap returned a %T", w)
		}
		if got != tc.want {
			t.Errorf("%s: options %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// The config refuses what the options turn into the default.
	for _, js := range []string{`{"childPolicy":[{"round_robin":{}}],"drainTimeout":"0s"}`, `{"childPolicy":[{"round_robin":{}}],"orphanTimeout":"0s"}`} {
		if _, err := parseConfig([]byte(js)); err == nil {
			t.Errorf("parseConfig(%s) accepted a zero duration", js)
		}
	}
}
