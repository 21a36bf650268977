package leaktest

import (
	"testing"
	"time"
)

// TestPollIntervalKeepsTheDefaultForNoPause: a pause of zero or less would
// make Find spin on /proc, so PollInterval ignores it.
func TestPollIntervalKeepsTheDefaultForNoPause(t *testing.T) {
	for _, tc := range []struct {
		d, want time.Duration
	}{
		{-time.Millisecond, defaultInterval},
		{0, defaultInterval},
		{time.Nanosecond, time.Nanosecond},
		{time.Second, time.Second},
	} {
		if got := buildOpts([]Option{PollInterval(tc.d)}).interval; got != tc.want {
			t.Errorf("PollInterval(%v): interval %v, want %v", tc.d, got, tc.want)
		}
	}
}

// TestDefaultsAreTheDocumentedOnes: the option docs promise a 5s deadline
// and a 10ms pause.
func TestDefaultsAreTheDocumentedOnes(t *testing.T) {
	o := buildOpts(nil)
	if o.deadline != 5*time.Second || o.interval != 10*time.Millisecond {
		t.Errorf("defaults: deadline %v, interval %v; want 5s and 10ms", o.deadline, o.interval)
	}
}
