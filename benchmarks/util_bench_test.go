package benchmarks

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/leakproof/leakproof/trace"
)

// subscribe attaches a trace subscriber that drains every event on its own
// goroutine, as `leakproof trace watch` or the admin service would, until
// the returned function runs. It fails tb if the subscriber fell behind.
func subscribe(tb testing.TB) (stop func()) {
	sub := trace.Subscribe(1<<16, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range sub.Events() {
		}
	}()
	return func() {
		sub.Close()
		<-done
		if sub.Dropped() {
			tb.Errorf("trace subscriber fell behind and was dropped")
		}
	}
}

// subscribeNothing attaches n trace subscribers whose filters accept no
// event (no manager has id 0): the cost of watchers of other channels.
func subscribeNothing(n int) (stop func()) {
	subs := make([]*trace.Subscription, n)
	for i := range subs {
		subs[i] = trace.Subscribe(16, func(e *trace.Event) bool { return e.Manager == 0 })
	}
	return func() {
		for _, s := range subs {
			s.Close()
		}
	}
}

// matchNothing attaches n trace subscribers whose Match selects no event
// (half by a target, half by a backend key no channel has), as the admin
// service subscribes its watchers.
func matchNothing(n int) (stop func()) {
	subs := make([]*trace.Subscription, n)
	for i := range subs {
		m := trace.Match{Target: fmt.Sprintf("nothing:///%d", i)}
		if i%2 == 1 {
			m = trace.Match{Key: fmt.Sprintf("192.0.2.1:%d", i)}
		}
		subs[i] = trace.SubscribeMatch(16, m, nil)
	}
	return func() {
		for _, s := range subs {
			s.Close()
		}
	}
}

// percentiles returns the p50 and p99 of ds (nearest rank).
func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return rank(0.50), rank(0.99)
}
