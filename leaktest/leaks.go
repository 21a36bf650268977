package leaktest

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/leakproof/leakproof/internal/procfs"
	"github.com/leakproof/leakproof/internal/sockowner"
	"go.uber.org/goleak"
)

// Leaks is what Find found not back at the baseline, each leak with its
// evidence. It is the typed result that Check, VerifyNone and VerifyTestMain
// only format: code that judges a leak reads these fields, never the
// messages.
type Leaks struct {
	// Deadline is how long Find polled before it gave up.
	Deadline time.Duration

	// Errors say why a part of the check could not be made: a baseline or
	// descriptors that could not be read, a Backends address that is not
	// IP:port. A check with errors is not clean.
	Errors []error

	// FDs are the descriptors open now that were not open at the baseline,
	// or that point somewhere else than they did, sorted by number.
	FDs []FD

	// Backends are the backends named with [Backends] that have more
	// sockets than at the baseline, in the order they were named.
	Backends []BackendSockets

	// Goroutines is goleak's report of the goroutines that were not running
	// at the baseline, with each one's stack; nil if there are none.
	Goroutines error

	// Groups are the goroutines of Goroutines grouped by stack, the
	// largest groups first (those still running when Find returned).
	Groups []GoroutineGroup

	// Channels are the grpc channels open when Find gave up that were not
	// open at the baseline: the usual cause of leaked grpc goroutines is
	// a *grpc.ClientConn never closed. They are evidence, not a leak of
	// their own kind; they are listed only when something leaked.
	Channels []Channel
}

// FD is one open file descriptor and what it points to.
type FD struct {
	Num    int     // the descriptor number
	Target string  // readlink of /proc/self/fd/N: a path, "socket:[123]", ...
	Socket *Socket // the TCP socket Target names, if it names one
	Owner  *Owner  // the leakproof subchannel that owns Socket, if one does
}

// Owner identifies the leakproof subchannel that owns a socket: the one the
// socket-tracking dialer of package subconn dialed it for.
type Owner struct {
	Manager    uint64 // id of the subconn.Manager
	Target     string // the channel target the manager serves
	Subchannel uint64 // process-wide subchannel id
	Key        string // the backend key, as the trace prints it
}

// BackendSockets is a backend with more sockets than at the baseline.
type BackendSockets struct {
	Backend  netip.AddrPort
	Baseline int  // sockets to Backend at the baseline
	Now      int  // sockets to Backend when Find gave up
	FDs      []FD // the descriptors of the sockets to Backend, by local address
	// Elsewhere are the connections to Backend, counted in Now, that
	// another process holds and did not at the baseline: a socket this
	// process dialed without close-on-exec is inherited by every child
	// it starts, and stays ESTABLISHED after this process closes it, for
	// as long as the child lives.
	Elsewhere []HeldSocket
}

// Clean reports whether nothing leaked and every part of the check was made.
// A nil *Leaks is clean.
func (l *Leaks) Clean() bool {
	return l == nil || (len(l.Errors) == 0 && len(l.FDs) == 0 && len(l.Backends) == 0 && l.Goroutines == nil)
}

// Find polls until goroutines, file descriptors and sockets to Backends are
// back at base, or the deadline passes, and returns what is not: nil when
// everything is back. It is the core of Check, VerifyNone and
// VerifyTestMain, for callers that judge the result themselves.
func Find(base *Snapshot, options ...Option) *Leaks {
	o := buildOpts(options)
	l := &Leaks{Deadline: o.deadline}
	if base == nil {
		l.Errors = append(l.Errors, errors.New("leaktest: VerifyNone needs a baseline from Take, got nil"))
		return l
	}
	backends, err := o.backendAddrs()
	if err != nil {
		l.Errors = append(l.Errors, err)
	}
	if base.err != nil && (len(backends) > 0 || !errors.Is(base.err, errors.ErrUnsupported)) {
		l.Errors = append(l.Errors, base.err)
	}
	deadline := time.Now().Add(o.deadline)
	gopts := append([]goleak.Option{base.goroutines}, o.goroutines...)
	// Goroutines are looked for once descriptors and sockets are clean,
	// because goleak retries for about half a second on its own before it
	// reports.
	for {
		p := poll(base, o, backends)
		if p.fdsClean() {
			if p.goroutines = goleak.Find(gopts...); p.goroutines == nil {
				return l.with(p)
			}
		}
		if !time.Now().Before(deadline) {
			if !p.fdsClean() {
				p.goroutines = goleak.Find(gopts...)
			}
			return l.with(p)
		}
		time.Sleep(min(o.interval, time.Until(deadline)))
	}
}

// with adds the last poll to l, and returns nil if l is then clean.
func (l *Leaks) with(p *polled) *Leaks {
	if p.err != nil {
		l.Errors = append(l.Errors, p.err)
	}
	l.FDs, l.Backends, l.Goroutines = p.fds, p.backends, p.goroutines
	if l.Clean() {
		return nil
	}
	l.Groups = leakedGroups(l.Goroutines)
	l.Channels = newChannels(p.channels)
	return l
}

// polled is what one poll found.
type polled struct {
	err        error // reading descriptors failed
	fds        []FD
	backends   []BackendSockets
	goroutines error
	channels   map[int64]bool // the baseline's channels
}

func (p *polled) fdsClean() bool { return p.err == nil && len(p.fds) == 0 && len(p.backends) == 0 }

// poll compares descriptors and sockets to base.
func poll(base *Snapshot, o *opts, backends []netip.AddrPort) *polled {
	p := &polled{channels: base.channels}
	if base.err != nil {
		return p // reported by Find
	}
	fds, socks, err := readProc()
	if err != nil {
		p.err = err
		return p
	}
	for fd, target := range fds {
		if base.FDs[fd] != target && !o.ignored(target) {
			p.fds = append(p.fds, newFD(fd, target, socks))
		}
	}
	slices.SortFunc(p.fds, func(a, b FD) int { return a.Num - b.Num })
	elsewhere := heldElsewhere(base, backends)
	for _, addr := range backends {
		b := BackendSockets{Backend: addr, Baseline: countTo(base.socks, addr), Now: countTo(socks, addr)}
		for _, h := range elsewhere {
			if h.Socket.Remote == addr {
				b.Elsewhere = append(b.Elsewhere, h)
			}
		}
		b.Now += len(b.Elsewhere)
		if b.Now <= b.Baseline {
			continue
		}
		byInode := make(map[uint64][]int)
		for fd, target := range fds {
			if ino, ok := procfs.SocketInode(target); ok {
				byInode[ino] = append(byInode[ino], fd)
			}
		}
		var to []procfs.Socket
		for _, s := range socks {
			if s.Remote == addr && s.IsConnection() {
				to = append(to, s)
			}
		}
		slices.SortFunc(to, func(a, b procfs.Socket) int { return a.Local.Compare(b.Local) })
		for _, s := range to {
			nums := byInode[s.Inode]
			slices.Sort(nums)
			for _, fd := range nums {
				b.FDs = append(b.FDs, newFD(fd, fmt.Sprintf("socket:[%d]", s.Inode), socks))
			}
		}
		p.backends = append(p.backends, b)
	}
	return p
}

// heldElsewhere returns the connections to backends that another process
// holds and did not at the baseline.
func heldElsewhere(base *Snapshot, backends []netip.AddrPort) []HeldSocket {
	if len(backends) == 0 {
		return nil
	}
	foreign, err := procfs.HeldElsewhere(func(a netip.AddrPort) bool { return slices.Contains(backends, a) })
	if err != nil {
		return nil // the namespace cannot be read where descriptors cannot: Find reports that
	}
	for ino := range foreign {
		if _, ok := base.foreign[ino]; ok {
			delete(foreign, ino)
		}
	}
	return holders(foreign)
}

// newFD describes descriptor fd with the socket it points to and its owner.
func newFD(fd int, target string, socks map[uint64]procfs.Socket) FD {
	f := FD{Num: fd, Target: target}
	ino, ok := procfs.SocketInode(target)
	if !ok {
		return f
	}
	s, ok := socks[ino]
	if !ok {
		return f
	}
	sock := socketOf(s)
	f.Socket = &sock
	if o, ok := sockowner.Lookup(s.Local, s.Remote); ok {
		f.Owner = &Owner{Manager: o.Manager, Target: o.Target, Subchannel: o.Subchannel, Key: o.Key}
	}
	return f
}
