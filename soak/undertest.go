package soak

import (
	"fmt"
	"strings"
)

// underTest is one channel under test: the main channel, or the comparison
// channel of Config.Compare. Both are values of this type, dialed, loaded,
// fed, booked and judged by the same code; the comparison channel's checks
// are informational.
type underTest struct {
	// Set by Run, read-only after.
	name    string // its channel's name, and its kind of sockets (kindMain, kindCompare)
	policy  string // the policy its service config selects, in Config.Policy's notation
	sc      string // its service config
	info    bool   // its checks inform and do not judge the run (the comparison channel)
	prefix  string // its check names' prefix ("" for the main channel)
	workers int    // unary workers of its load
	streams int    // stream workers of its load

	c     *client // set by run once dialed
	stats rpcCounters

	// Guarded by r.mu.
	limit    limitStat // the most sockets to one backend outside drain windows
	removals Removals  // its concluded removals
}

// limitStat is the most sockets a channel held to one backend outside the
// drain windows, and where (empty while at most one).
type limitStat struct {
	max   int
	where string
}

// note records n sockets to a backend; where says which and when.
func (l *limitStat) note(n int, where func() string) {
	if n > l.max {
		l.max, l.where = n, ""
		if n > 1 {
			l.where = where()
		}
	}
}

// newUnderTest returns the channels under test of cfg: the main channel,
// and the comparison channel if cfg.Compare is set.
func newUnderTest(cfg Config) []*underTest {
	uts := []*underTest{{
		name: kindMain, policy: cfg.Policy, sc: cfg.channelServiceConfig(),
		workers: cfg.Workers, streams: cfg.Streams,
	}}
	if cfg.Compare != "" {
		uts = append(uts, &underTest{
			name: kindCompare, policy: cfg.Compare, sc: serviceConfig(cfg.Compare, cfg.DrainTimeout),
			info: true, prefix: checkComparePrefix + cfg.Compare + ": ",
			workers: max(1, cfg.Workers/2), streams: min(1, cfg.Streams),
		})
	}
	return uts
}

// sockets is ut's sockets per backend in s.
func (ut *underTest) sockets(s Sample) map[string]int {
	if ut.name == kindCompare {
		return s.CompareSockets
	}
	return s.Sockets
}

// checks returns ut's own checks, in the order of the verdict: its RPC
// failures, its removed backends and its sockets per backend. The
// comparison channel's carry its prefix and are informational. Caller must
// hold r.mu.
func (r *runner) checks(ut *underTest, rpcs RPCStats, rms Removals) []Check {
	cs := []Check{
		rpcCheck(CheckRPCFailures, rpcs, r.cfg.MaxFailureRate),
		removalCheck(CheckRemovals, rms, r.cfg.bound()),
		r.limitCheck(ut),
	}
	if ut.info {
		for i := range cs {
			cs[i].Name = ut.prefix + cs[i].Name
			cs[i].Info = true
		}
	}
	return cs
}

// limitCheck judges ut's sockets per backend: the main channel's against
// Config.SocketLimit (two samples in a row over it fail), the comparison
// channel's against one. Caller must hold r.mu.
func (r *runner) limitCheck(ut *underTest) Check {
	c := Check{Name: CheckSocketLimit}
	switch {
	case ut.info:
		c.Pass = ut.limit.max <= 1
		c.Detail = fmt.Sprintf("at most %d socket(s) to one backend outside drain windows%s", ut.limit.max, at(ut.limit.where))
	case r.cfg.SocketLimit <= 0:
		c.Info, c.Pass = true, true
		c.Detail = fmt.Sprintf("at most %d socket(s) to one backend outside drain windows%s; not checked for %s", ut.limit.max, at(ut.limit.where), ut.policy)
	case len(r.limitFailures) == 0:
		c.Pass = true
		c.Detail = fmt.Sprintf("at most %d socket(s) to one backend outside GOAWAY and removal drain windows%s; limit %d", ut.limit.max, at(ut.limit.where), r.cfg.SocketLimit)
	default:
		c.Detail = fmt.Sprintf("over the limit of %d in two samples in a row, outside drain windows: %s", r.cfg.SocketLimit, strings.Join(r.limitFailures, "; "))
	}
	return c
}
