package soak

import (
	"context"
	"fmt"
	"time"

	"github.com/leakproof/leakproof/internal/xdsplane"
	"google.golang.org/grpc/resolver"
)

// The control plane's own faults, run only under Config.XDS, after the
// faults of AllFaults.
const (
	// FaultXDSRestart restarts the management server mid-phase (every ADS
	// stream dropped, the server back on its port with its resources),
	// with EDS pushes before and after: the client keeps its resources
	// while the server is away and follows the pushes made after.
	FaultXDSRestart Fault = "xds-restart"
	// FaultXDSNACK pushes a Cluster whose TypedStruct config the policy
	// rejects: the client NACKs it and keeps the last good one.
	FaultXDSNACK Fault = "xds-nack"
	// FaultXDSClusterSwitch moves the route to a second cluster over all
	// backends but the first (published before the route names it), deletes
	// the first cluster, and switches back halfway through the phase.
	FaultXDSClusterSwitch Fault = "xds-cds"
	// FaultXDSLocalityDup lists one backend in two localities: first as
	// the same address (grpc's xDS client NACKs it), then spelled twice
	// (127.0.0.1:P and [::ffff:127.0.0.1]:P), which is accepted.
	FaultXDSLocalityDup Fault = "xds-locality-dup"
)

// XDSFaults returns every fault of a run under Config.XDS, in timeline
// order: AllFaults, delivered as xDS pushes where they change the resolved
// list, then the control plane's own.
func XDSFaults() []Fault {
	out := AllFaults()
	for _, s := range xdsFaultTable {
		out = append(out, s.fault)
	}
	return out
}

// xdsFaultTable holds the control plane's own faults; faultTable the
// others. specOf reads both.
var xdsFaultTable = []faultSpec{
	{
		fault:       FaultXDSRestart,
		description: "management server restart: ADS streams dropped, the server back on its port; EDS pushes before and after",
		setsList:    true,
		inject:      (*runner).injectXDSRestart,
		provoked: func(p *phaseRun) (bool, string) {
			if p.xds.restarts == 0 || !p.xds.ackedRestart {
				return false, "no restart followed by an accepted push"
			}
			return true, ""
		},
	},
	{
		fault:       FaultXDSNACK,
		description: "a Cluster whose TypedStruct config the policy rejects: NACKed, the last good one kept",
		inject:      (*runner).injectXDSNACK,
		provoked:    nacked,
	},
	{
		fault:       FaultXDSClusterSwitch,
		description: "cluster switch (CDS): the route moves to a second cluster without the first backend, the first is deleted; and back",
		setsList:    true,
		inject:      (*runner).injectXDSClusterSwitch,
		provoked: func(p *phaseRun) (bool, string) {
			if p.xds.switches == 0 {
				return false, "no cluster switch"
			}
			return true, ""
		},
	},
	{
		fault:       FaultXDSLocalityDup,
		description: "one backend in two localities: the same address (NACKed), then spelled twice (accepted)",
		inject:      (*runner).injectXDSLocalityDup,
		provoked: func(p *phaseRun) (bool, string) {
			if p.xds.nacks == 0 || !p.xds.dupAccepted {
				return false, "the duplicate was not both NACKed and, spelled twice, accepted"
			}
			return true, ""
		},
	},
}

func nacked(p *phaseRun) (bool, string) {
	if p.xds.nacks == 0 {
		return false, "nothing was NACKed"
	}
	return true, ""
}

// injectXDSRestart removes the first backend, restarts the server a third
// into the phase, and re-adds the backend after a pause served by the
// resources the client holds; the re-adding push must be accepted.
func (r *runner) injectXDSRestart(ctx, pctx context.Context, p *phaseRun) error {
	// The steps run on the run's context: a short phase on a loaded
	// machine still gets its restart and the push after it.
	x := r.xdsFeed()
	r.setList(addrState(r.regular[1:]...))
	if !sleepCtx(ctx, r.phaseLen/3) {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, xdsWait)
	err := x.srv.Restart(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("xds-restart: %w", err)
	}
	r.inPhase(func(p *phaseRun) { p.xds.restarts++ })
	if !sleepCtx(ctx, r.phaseLen/6) {
		return nil
	}
	r.setList(r.baseState())
	x.mu.Lock()
	v := x.last
	x.mu.Unlock()
	if err := x.waitAcked(xdsplane.EndpointType, v); err != nil {
		return fmt.Errorf("xds-restart: the push after the restart: %w", err)
	}
	r.inPhase(func(p *phaseRun) { p.xds.ackedRestart = true })
	<-pctx.Done()
	return nil
}

// injectXDSNACK gives main's cluster a config its policy rejects, waits for
// the NACK, and restores the good config at the end of the phase.
func (r *runner) injectXDSNACK(ctx, pctx context.Context, p *phaseRun) error {
	x := r.xdsFeed()
	x.mu.Lock()
	x.badConfig = true
	_, err := x.pushNACKedLocked(xdsplane.ClusterType)
	x.mu.Unlock()
	<-pctx.Done()
	x.mu.Lock()
	x.badConfig = false
	if _, perr := x.pushLocked(); perr != nil && err == nil {
		err = perr
	}
	x.mu.Unlock()
	if err != nil {
		return fmt.Errorf("xds-nack: %w", err)
	}
	return nil
}

// injectXDSClusterSwitch switches main's route from cluster a to cluster b
// (every backend but the first), make before break, and back halfway.
// Each switch opens a drain window: the old cluster's subchannels close as
// the new cluster's connect, one pair per backend the two share.
func (r *runner) injectXDSClusterSwitch(ctx, pctx context.Context, p *phaseRun) error {
	x := r.xdsFeed()
	if err := r.switchCluster(x, "b", addrState(r.regular[1:]...)); err != nil {
		return fmt.Errorf("xds-cds: %w", err)
	}
	sleepCtx(pctx, time.Until(p.started.Add(r.phaseLen/2))) // cut short or not, switch back
	if ctx.Err() != nil {
		return nil
	}
	if err := r.switchCluster(x, "a", r.baseState()); err != nil {
		return fmt.Errorf("xds-cds: back: %w", err)
	}
	r.inPhase(func(p *phaseRun) { p.xds.switches++ })
	return nil
}

// switchCluster publishes cluster to (listing st), moves the route to it
// with st as the resolved list, and deletes the other cluster.
func (r *runner) switchCluster(x *xdsFeed, to string, st resolver.State) error {
	x.mu.Lock()
	x.eds[to] = r.cfg.localities(st)
	v, err := x.pushLocked()
	x.mu.Unlock()
	if err != nil {
		return err
	}
	if err := x.waitAcked(xdsplane.ClusterType, v); err != nil {
		return err
	}
	now := time.Now()
	r.mu.Lock()
	r.drainWindows = append(r.drainWindows, timeWindow{now, now.Add(r.cfg.bound())})
	// Until the route has moved and the old cluster is gone, the channel
	// runs both clusters' policies, each with its own subchannels to the
	// backends it lists: both listings explain subchannels, for the bound.
	r.subchannelWatch.listBoth(now, endpointsPer(st, r.names), r.cfg.bound())
	r.mu.Unlock()
	x.mu.Lock()
	from := x.route
	x.route = to
	x.mu.Unlock()
	r.setList(st) // the route and the list, in one push
	x.mu.Lock()
	v = x.last
	x.mu.Unlock()
	if err := x.waitAcked(xdsplane.RouteType, v); err != nil {
		return err
	}
	x.mu.Lock()
	delete(x.eds, from)
	_, err = x.pushLocked()
	x.mu.Unlock()
	return err
}

// injectXDSLocalityDup lists the first backend in a second locality: the
// same address, which the client NACKs, then spelled as an IPv4-mapped
// IPv6 address, which it accepts; the base list returns at the end.
func (r *runner) injectXDSLocalityDup(ctx, pctx context.Context, p *phaseRun) error {
	x := r.xdsFeed()
	a := r.regular[0].Addr()
	z1 := localities(r.baseState())[0]
	x.mu.Lock()
	x.eds[x.route] = []xdsplane.Locality{z1, {Name: "z2", Endpoints: []string{a}}}
	_, err := x.pushNACKedLocked(xdsplane.EndpointType)
	x.eds[x.route] = []xdsplane.Locality{z1, {Name: "z2", Endpoints: []string{spelling(a, map[string]int{a: 1})}}}
	var v string
	if err == nil {
		v, err = x.pushLocked()
	}
	x.mu.Unlock()
	if err == nil {
		err = x.waitAcked(xdsplane.EndpointType, v)
	}
	if err == nil {
		r.inPhase(func(p *phaseRun) { p.xds.dupAccepted = true })
	}
	<-pctx.Done()
	r.setList(r.baseState())
	if err != nil {
		return fmt.Errorf("xds-locality-dup: %w", err)
	}
	return nil
}
