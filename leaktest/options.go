package leaktest

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/leakproof/leakproof/internal/sockowner"
	"go.uber.org/goleak"
)

const (
	defaultDeadline = 5 * time.Second
	defaultInterval = 10 * time.Millisecond
)

// Option configures Check, VerifyNone and VerifyTestMain.
type Option interface {
	apply(*opts)
}

type opts struct {
	deadline   time.Duration
	interval   time.Duration
	backends   []string
	ignoreFD   []func(target string) bool
	goroutines []goleak.Option
}

type optionFunc func(*opts)

func (f optionFunc) apply(o *opts) { f(o) }

func buildOpts(options []Option) *opts {
	o := &opts{deadline: defaultDeadline, interval: defaultInterval}
	for _, opt := range options {
		opt.apply(o)
	}
	return o
}

// Deadline sets how long the checks poll for goroutines, descriptors and
// sockets to return to the baseline before they report a leak. The default
// is 5s; a check that passes returns as soon as everything is back.
// Goroutines get goleak's own retries (about half a second) on top.
func Deadline(d time.Duration) Option {
	return optionFunc(func(o *opts) { o.deadline = d })
}

// PollInterval sets the pause between two polls. The default is 10ms.
func PollInterval(d time.Duration) Option {
	return optionFunc(func(o *opts) {
		if d > 0 {
			o.interval = d
		}
	})
}

// Backends names backends, as IP:port (such as "127.0.0.1:50051" or
// "[::1]:50051"), whose sockets must return to the count at the baseline.
// The count includes every TCP socket this process holds whose remote
// address is the backend, in any state but LISTEN and TIME_WAIT, and every
// ESTABLISHED connection to the backend that another process holds and did
// not at the baseline (a socket a child process inherited, which the report
// names with the process); an IPv4-mapped IPv6 address counts as its IPv4
// address. It may be given more than once.
func Backends(addrs ...string) Option {
	return optionFunc(func(o *opts) { o.backends = append(o.backends, addrs...) })
}

// IgnoreFD excludes descriptors whose target, as readlink of
// /proc/self/fd/N reports it (a path, "socket:[123]", "pipe:[456]",
// "anon_inode:[eventpoll]"), matches. Use it for descriptors that code
// outside the test opens and keeps on purpose. Sockets to Backends are
// counted even when their descriptor is ignored.
func IgnoreFD(match func(target string) bool) Option {
	return optionFunc(func(o *opts) { o.ignoreFD = append(o.ignoreFD, match) })
}

// GoroutineOptions passes options to goleak, typically goleak.IgnoreTopFunction
// for a goroutine that a third-party library keeps for the life of the
// process. Never ignore grpc's own goroutines: one left running means a
// ClientConn, SubConn or server was not closed.
func GoroutineOptions(options ...goleak.Option) Option {
	return optionFunc(func(o *opts) { o.goroutines = append(o.goroutines, options...) })
}

func (o *opts) ignored(target string) bool {
	for _, match := range o.ignoreFD {
		if match(target) {
			return true
		}
	}
	return false
}

func (o *opts) backendAddrs() ([]netip.AddrPort, error) {
	addrs := make([]netip.AddrPort, 0, len(o.backends))
	for _, s := range o.backends {
		ap, err := parseBackend(s)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, ap)
	}
	return addrs, nil
}

func parseBackend(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("leaktest: backend %q: want IP:port, such as 127.0.0.1:50051: %w", s, err)
	}
	return sockowner.Normalize(ap), nil
}
