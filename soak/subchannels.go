package soak

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/leakproof/leakproof/internal/channelzview"
	"google.golang.org/grpc/resolver"
)

// The subchannels check (CheckSubchannels): every subchannel and every
// socket of the channel under test is explained by the resolver state, for
// any policy. A backend listed in k endpoints now, or at any time within
// the removal bound, explains at most k subchannels and k sockets (GOAWAY
// drain windows excused for sockets), and one more for each endpoint that
// stopped listing it within the bound (a removed subchannel draining while
// its backend, listed again, has a new one). Subchannels are counted by grpc's
// channelz, a witness independent of the policy, so that a subchannel a
// policy forgot is caught while the channel lives even when it holds no
// socket.

// listing is one resolver state: from when, and how many endpoints list
// each backend.
type listing struct {
	at time.Time
	k  map[string]int
}

// subchannelWatch holds the state of CheckSubchannels. Guarded by r.mu.
type subchannelWatch struct {
	listings []listing // the current state last; older ones kept for the bound
	fails    []string
	failed   map[string]bool // backends already listed in fails
	maxSubs  int             // most subchannels to one backend seen
	maxWhere string
	reads    int    // channelz readings judged
	readErr  string // the first channelz error
}

// endpointsPer counts, per backend name, the endpoints of st that list it
// (an address alone is an endpoint of its own).
func endpointsPer(st resolver.State, names map[netip.AddrPort]string) map[string]int {
	k := map[string]int{}
	count := func(addrs []resolver.Address) {
		seen := map[string]bool{}
		for _, a := range addrs {
			ap, err := netip.ParseAddrPort(a.Addr)
			if err != nil {
				continue
			}
			if n, ok := names[ap]; ok && !seen[n] {
				seen[n] = true
				k[n]++
			}
		}
	}
	for _, a := range st.Addresses {
		count([]resolver.Address{a})
	}
	for _, ep := range st.Endpoints {
		count(ep.Addresses)
	}
	return k
}

// list records a new resolver state, dropping the ones that ended more
// than bound ago. Caller must hold r.mu.
func (w *subchannelWatch) list(at time.Time, k map[string]int, bound time.Duration) {
	keep := w.listings[:0]
	for i, l := range w.listings {
		end := at
		if i+1 < len(w.listings) {
			end = w.listings[i+1].at
		}
		if at.Sub(end) <= bound {
			keep = append(keep, l)
		}
	}
	w.listings = append(keep, listing{at: at, k: k})
}

// listBoth records, at at, a state in which the current listing and k are
// in force side by side (two clusters of one channel during a cluster
// switch): a backend listed by both explains the sum. Caller must hold r.mu.
func (w *subchannelWatch) listBoth(at time.Time, k map[string]int, bound time.Duration) {
	both := maps.Clone(k)
	if n := len(w.listings); n > 0 {
		for name, c := range w.listings[n-1].k {
			both[name] += c
		}
	}
	w.list(at, both, bound)
}

// explained returns how many subchannels (and sockets) of one channel a
// backend may have at now: the most endpoints that listed it in any state
// in force within bound before now, or, if more, the endpoints listing it
// now plus every endpoint that stopped listing it within bound. A
// subchannel shut down when its endpoint went away may drain for the bound
// (a stream still open on it), while its backend, listed again, already
// has a new one.
func (w *subchannelWatch) explained(name string, now time.Time, bound time.Duration) int {
	most, released := 0, 0
	for i, l := range w.listings {
		end := now
		if i+1 < len(w.listings) {
			end = w.listings[i+1].at
		}
		if now.Sub(end) > bound {
			continue
		}
		most = max(most, l.k[name])
		if i+1 < len(w.listings) {
			released += max(0, l.k[name]-w.listings[i+1].k[name])
		}
	}
	if n := len(w.listings); n > 0 {
		most = max(most, w.listings[n-1].k[name]+released)
	}
	return most
}

// witness reads the channel under test's subchannels from channelz: count
// per backend name and those without a socket. ok is false when channelz
// does not list the channel.
func (r *runner) witness() (subs, idle map[string]int, ok bool, err error) {
	r.mu.Lock()
	target := r.witnessTarget
	r.mu.Unlock()
	if target == "" {
		return nil, nil, false, nil
	}
	chans, err := channelzview.Target(target)
	if err != nil || len(chans) != 1 {
		return nil, nil, false, err
	}
	subs, idle = map[string]int{}, map[string]int{}
	for _, sc := range chans[0].Subchannels {
		name := sc.Addr
		if ap, err := netip.ParseAddrPort(sc.Addr); err == nil {
			if n, ok := r.names[ap]; ok {
				name = n
			}
		}
		subs[name]++
		if sc.Sockets == 0 {
			idle[name]++
		}
	}
	return subs, idle, true, nil
}

// checkSubchannels judges one sample: subchannels per backend from the
// witness, sockets per backend from /proc, against what the resolver
// listed within the bound. A backend over for inRunStreak samples in a row
// fails, named once. Caller must hold r.mu.
func (r *runner) checkSubchannels(now time.Time, s Sample, subs, idle map[string]int, read bool, readErr error) {
	w := &r.subchannelWatch
	if readErr != nil && w.readErr == "" {
		w.readErr = readErr.Error()
	}
	bound := r.cfg.bound()
	drain := r.drainingLocked(now)
	where := fmt.Sprintf("at %.1fs", time.Duration(s.At).Seconds())
	if s.Phase != "" {
		where += " (" + string(s.Phase) + ")"
	}
	if read {
		w.reads++
	}
	names := map[string]bool{}
	for n := range subs {
		names[n] = true
	}
	for n := range s.Sockets {
		names[n] = true
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		k := w.explained(name, now, bound)
		n, socks := subs[name], s.Sockets[name]
		if n > w.maxSubs {
			w.maxSubs, w.maxWhere = n, name+" "+where
		}
		over := read && n > k
		overSocks := !drain && socks > k
		if !r.inRun.failing("subchannels "+name, over || overSocks) || w.failed[name] {
			continue
		}
		if w.failed == nil {
			w.failed = map[string]bool{}
		}
		w.failed[name] = true
		msg := fmt.Sprintf("backend %s (%s) %s: ", name, r.addrOf(name), where)
		if read {
			msg += fmt.Sprintf("%d subchannel(s) in channelz (%d without a socket), ", n, idle[name])
		}
		msg += fmt.Sprintf("%d socket(s) of the channel under test; listed in at most %d endpoint(s) within %v, so at most %d explained (policy %s)",
			socks, k, bound, k, r.cfg.Policy)
		if len(w.fails) < maxListed {
			w.fails = append(w.fails, msg)
		}
		r.logf("soak: LEAK (%s): %s", CheckSubchannels, msg)
	}
}

// subchannelCheck is the verdict's line for CheckSubchannels. Caller must
// hold r.mu.
func (r *runner) subchannelCheck() Check {
	w := &r.subchannelWatch
	c := Check{Name: CheckSubchannels, Pass: len(w.fails) == 0}
	switch {
	case !c.Pass:
		c.Detail = strings.Join(w.fails, "; ")
	case w.reads == 0:
		c.Detail = "sockets per backend within the endpoints listing it; channelz never listed the channel under test, so subchannels without a socket were not counted"
		if w.readErr != "" {
			c.Detail += ": " + w.readErr
		}
	default:
		c.Detail = fmt.Sprintf("on every sample, each backend's subchannels (channelz, %d readings) and sockets within the endpoints listing it now or within the removal bound; most subchannels to one backend %d%s",
			w.reads, w.maxSubs, at(w.maxWhere))
	}
	return c
}
