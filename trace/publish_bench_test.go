package trace

import (
	"fmt"
	"testing"
)

// BenchmarkPublish is the cost of one event to the publisher (a manager,
// under its lock) with nobody listening, with one subscriber draining every
// event on another goroutine, and with 64 subscribers whose filters match
// nothing, to every target or to other targets.
func BenchmarkPublish(b *testing.B) {
	for _, mode := range []string{"none", "hold1", "drain1", "nothing64", "other-targets64"} {
		b.Run("subs="+mode, func(b *testing.B) {
			var subs []*Subscription
			done := make(chan int)
			switch mode {
			case "drain1":
				s := Subscribe(1<<16, nil)
				subs = append(subs, s)
				go func() {
					n := 0
					for range s.Events() {
						n++
					}
					done <- n
				}()
			case "hold1":
				subs = append(subs, Subscribe(1<<30, nil))
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
			if mode == "drain1" {
				if n := <-done; n != b.N {
					b.Fatalf("the subscriber read %d of %d events", n, b.N)
				}
			}
		})
	}
}
