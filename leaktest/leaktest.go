package leaktest

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/leakproof/leakproof/internal/sockowner"
	"go.uber.org/goleak"
)

// TestingT is the part of testing.TB that the checks use.
type TestingT interface {
	Helper()
	Errorf(format string, args ...any)
}

// Check takes a baseline now and returns a function that reports to t, when
// called, every goroutine, file descriptor and socket to Backends that is
// not back at the baseline by the deadline:
//
//	defer leaktest.Check(t, leaktest.Backends(lis.Addr().String()))()
//
// If the test releases resources in t.Cleanup functions, register the check
// first so that it runs last: t.Cleanup(leaktest.Check(t)).
func Check(t TestingT, options ...Option) func() {
	t.Helper()
	base, _ := Take() // VerifyNone reports a failure to read /proc
	return func() {
		t.Helper()
		VerifyNone(t, base, options...)
	}
}

// VerifyNone reports to t every goroutine, file descriptor and socket to
// Backends that is not back at base by the deadline. It polls, and returns as
// soon as everything is back.
func VerifyNone(t TestingT, base *Snapshot, options ...Option) {
	t.Helper()
	if base == nil {
		t.Errorf("leaktest: VerifyNone needs a baseline from Take, got nil")
		return
	}
	o := buildOpts(options)
	backends, err := o.backendAddrs()
	if err != nil {
		t.Errorf("%v", err)
	}
	if base.err != nil && (len(backends) > 0 || !errors.Is(base.err, errors.ErrUnsupported)) {
		t.Errorf("%v", base.err)
	}
	l := find(base, o, backends)
	for _, msg := range l.messages(o.deadline) {
		t.Errorf("%s", msg)
	}
}

// leaks is what one poll found.
type leaks struct {
	err        error          // reading descriptors failed
	fds        []leakedFD     // sorted by descriptor
	backends   []backendCount // only those above the baseline
	sockets    map[uint64]Socket
	goroutines error // goleak's report; nil when fds and backends were not yet clean
}

type leakedFD struct {
	fd     int
	target string
}

type backendCount struct {
	addr      netip.AddrPort
	base, now int
	fds       map[uint64][]int // inode → descriptors, for the report
}

func (l *leaks) fdsClean() bool { return l.err == nil && len(l.fds) == 0 && len(l.backends) == 0 }

// find polls until nothing leaks or the deadline passes, and returns the
// last poll. Goroutines are looked for once descriptors and sockets are
// clean, because goleak retries for about half a second on its own before it
// reports.
func find(base *Snapshot, o *opts, backends []netip.AddrPort) *leaks {
	deadline := time.Now().Add(o.deadline)
	gopts := append([]goleak.Option{base.goroutines}, o.goroutines...)
	for {
		l := poll(base, o, backends)
		if l.fdsClean() {
			if l.goroutines = goleak.Find(gopts...); l.goroutines == nil {
				return l
			}
		}
		if !time.Now().Before(deadline) {
			if !l.fdsClean() {
				l.goroutines = goleak.Find(gopts...)
			}
			return l
		}
		time.Sleep(min(o.interval, time.Until(deadline)))
	}
}

// poll compares descriptors and sockets to base.
func poll(base *Snapshot, o *opts, backends []netip.AddrPort) *leaks {
	l := &leaks{}
	if base.err != nil {
		return l // reported by VerifyNone
	}
	fds, socks, err := readProc()
	if err != nil {
		l.err = err
		return l
	}
	l.sockets = socks
	for fd, target := range fds {
		if base.FDs[fd] != target && !o.ignored(target) {
			l.fds = append(l.fds, leakedFD{fd, target})
		}
	}
	slices.SortFunc(l.fds, func(a, b leakedFD) int { return a.fd - b.fd })
	for _, addr := range backends {
		b := backendCount{addr: addr, base: countTo(base.Sockets, addr), now: countTo(socks, addr)}
		if b.now > b.base {
			b.fds = make(map[uint64][]int)
			for fd, target := range fds {
				if ino, ok := socketInode(target); ok {
					b.fds[ino] = append(b.fds[ino], fd)
				}
			}
			for _, list := range b.fds {
				slices.Sort(list)
			}
			l.backends = append(l.backends, b)
		}
	}
	return l
}

// messages renders l, one message per kind of leak.
func (l *leaks) messages(deadline time.Duration) []string {
	var msgs []string
	if l.err != nil {
		msgs = append(msgs, l.err.Error())
	}
	if len(l.fds) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "leaktest: %d file descriptor(s) leaked: still open after %v, not open at the baseline:", len(l.fds), deadline)
		for _, f := range l.fds {
			b.WriteString(l.describe(f.fd, f.target))
		}
		msgs = append(msgs, b.String())
	}
	for _, bc := range l.backends {
		var b strings.Builder
		fmt.Fprintf(&b, "leaktest: %d socket(s) to backend %v after %v, want %d (the baseline):", bc.now, bc.addr, deadline, bc.base)
		var socks []Socket
		for _, s := range l.sockets {
			if s.Remote == bc.addr && s.counted() {
				socks = append(socks, s)
			}
		}
		slices.SortFunc(socks, func(a, b Socket) int { return a.Local.Compare(b.Local) })
		for _, s := range socks {
			for _, fd := range bc.fds[s.Inode] {
				b.WriteString(l.describe(fd, fmt.Sprintf("socket:[%d]", s.Inode)))
			}
		}
		msgs = append(msgs, b.String())
	}
	if l.goroutines != nil {
		msgs = append(msgs, fmt.Sprintf("leaktest: goroutines leaked after %v: %v", deadline, l.goroutines))
	}
	return msgs
}

// owner names the leakproof subchannel that owns s, if one does.
func owner(s Socket) string {
	o, ok := sockowner.Lookup(s.Local, s.Remote)
	if !ok {
		return ""
	}
	return fmt.Sprintf(", owned by subchannel %d (key %q, manager %d, target %q)", o.Subchannel, o.Key, o.Manager, o.Target)
}

// describe renders one descriptor as a report line: a file's path, or a
// socket's addresses, state and owner.
func (l *leaks) describe(fd int, target string) string {
	line := fmt.Sprintf("\n\tfd %d -> %s", fd, target)
	if ino, ok := socketInode(target); ok {
		if s, ok := l.sockets[ino]; ok {
			line += fmt.Sprintf(" tcp %v%s", s, owner(s))
		}
	}
	return line
}
