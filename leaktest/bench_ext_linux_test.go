package leaktest_test

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/leakproof/leakproof/leaktest"
)

// BenchmarkTake measures one full snapshot (goroutine baseline, descriptors
// and the TCP tables) in a process with no connections and with 1,000 open
// sockets, the cost of calling Take or SocketsTo in a soak loop.
func BenchmarkTake(b *testing.B) {
	for _, pairs := range []int{0, 500} {
		b.Run(fmt.Sprintf("sockets=%d", 2*pairs), func(b *testing.B) {
			raiseFDLimit(b, uint64(2*pairs+256))
			lis := listen(b)
			for range pairs {
				client, server := connect(b, lis)
				b.Cleanup(func() {
					client.Close()
					server.Close()
				})
			}
			if n, err := leaktest.SocketsTo(lis.Addr().String()); err != nil || n != pairs {
				b.Fatalf("SocketsTo = %d, %v; want %d connections open", n, err, pairs)
			}
			b.ReportAllocs()
			for b.Loop() {
				snap, err := leaktest.Take()
				if err != nil {
					b.Fatal(err)
				}
				if len(snap.Sockets) < 2*pairs {
					b.Fatalf("snapshot holds %d sockets, want at least %d", len(snap.Sockets), 2*pairs)
				}
			}
		})
	}
}

// raiseFDLimit lifts the soft limit on open descriptors to need, up to the
// hard limit; 1,024 is a common default.
func raiseFDLimit(b *testing.B, need uint64) {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur >= need {
		return
	}
	lim.Cur = min(need, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur < need {
		b.Fatalf("descriptor limit %d (hard limit) is below the %d this benchmark needs", lim.Cur, need)
	}
}
