package trace

import (
	"testing"
)

// The trace checker keeps nothing for a manager closed with no subchannel
// open (a soak closes tens of thousands of channels).
func TestTraceCheckerForgetsEmptyClosedManagers(t *testing.T) {
	c := NewChecker()
	c.Add(Event{Seq: 1, Manager: 7, Kind: KindManagerOpen})
	c.Add(Event{Seq: 2, Manager: 7, Kind: KindManagerClose})
	c.mu.Lock()
	n := len(c.closed)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d closed managers kept, want 0", n)
	}
}
