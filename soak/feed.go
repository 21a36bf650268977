package soak

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// A feed is how the resolver-side faults reach the channels: a manual
// resolver per channel (manualFeed), a DNS server (ResolverDNS), or an
// embedded xDS control plane whose pushes every channel follows (xdsFeed,
// ResolverXDS). The faults build
// resolver.States and call the runner's setList and reportError, which
// keep the removal bookkeeping and hand the state to the feed.
type feed interface {
	// dial returns the target and the dial options that put a new channel
	// of the run on the feed: a channel of kind named name, with service
	// config sc, starting from state. It may set c.res.
	dial(c *client, kind, sc string, state resolver.State) (target string, opts []grpc.DialOption, err error)
	// update delivers st to the channels under test (main and compare).
	update(st resolver.State)
	// reportError makes the channels under test see a bad resolver update.
	reportError(err error)
	// close stops whatever the feed runs, after every channel closed.
	close()
}

// newFeed returns the run's feed for Config.Resolver.
func (r *runner) newFeed() (feed, error) {
	switch r.cfg.Resolver {
	case ResolverXDS:
		return newXDSFeed(r)
	case ResolverDNS:
		return newDNSFeed(r)
	}
	return manualFeed{r}, nil
}

// manualFeed gives every channel a resolver/manual resolver and the
// policy in its default service config.
type manualFeed struct{ r *runner }

func (f manualFeed) dial(c *client, _, sc string, state resolver.State) (string, []grpc.DialOption, error) {
	c.res = manual.NewBuilderWithScheme("soak")
	c.res.InitialState(state)
	return c.target, []grpc.DialOption{
		grpc.WithResolvers(c.res),
		grpc.WithDefaultServiceConfig(sc),
	}, nil
}

func (f manualFeed) update(st resolver.State) {
	for _, ut := range f.r.chans {
		ut.c.res.UpdateState(st)
	}
}

func (f manualFeed) reportError(err error) {
	for _, ut := range f.r.chans {
		ut.c.res.CC().ReportError(err)
	}
}

func (manualFeed) close() {}
