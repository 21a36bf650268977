package subconn

import (
	"strings"
	"testing"
)

// TestACleanCloseRecordsNoLeakSeries: a counter recorded with 0 still shows
// up in a metrics backend as a series; a manager that leaked nothing must
// not record one.
func TestACleanCloseRecordsNoLeakSeries(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc, WithTarget("fake:///clean"))
	h, err := m.Acquire(addr("10.0.0.1:1"), "h")
	if err != nil {
		t.Fatal(err)
	}
	h.Release("done")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	cc.metrics.mu.Lock()
	defer cc.metrics.mu.Unlock()
	for k := range cc.metrics.counts {
		if strings.HasPrefix(k, MetricLeaks) {
			t.Fatalf("a clean Close recorded %q = %d", k, cc.metrics.counts[k])
		}
	}
}
