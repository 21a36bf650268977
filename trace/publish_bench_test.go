package trace

import (
	"fmt"
	"testing"
)

// BenchmarkPublish is the cost of one event to the publisher (a manager,
// under its lock) with nobody listening, with 64 subscribers whose filter
// functions match nothing, and with 64 whose Match selects other targets.
// (A draining subscriber is measured where it runs, in BenchmarkChurnTrace:
// in a loop that only publishes, its cost is the machine's scheduling.)
func BenchmarkPublish(b *testing.B) {
	for _, mode := range []string{"none", "nothing64", "other-targets64"} {
		b.Run("subs="+mode, func(b *testing.B) {
			var subs []*Subscription
			switch mode {
			case "nothing64":
				for range 64 {
					subs = append(subs, Subscribe(16, func(e *Event) bool { return e.Manager == 0 }))
				}
			case "other-targets64":
				for i := range 64 {
					subs = append(subs, SubscribeMatch(16, Match{Target: fmt.Sprint("other:///", i)}, nil))
				}
			}
			e := &Event{Seq: 1, Manager: 7, Target: "dns:///svc", Subchannel: 3, Key: "127.0.0.1:1", Kind: KindRef, Holder: "endpoint{127.0.0.1:1}"}
			b.ReportAllocs()
			for b.Loop() {
				if Listening() {
					Publish(e)
				}
			}
			for _, s := range subs {
				s.Close()
			}
		})
	}
}
