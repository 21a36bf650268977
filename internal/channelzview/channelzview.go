// Package channelzview reads grpc's channelz registry in-process: every
// channel of the process with its target, state and policy, and every
// subchannel with its address, state and sockets. It is the independent
// witness the soak and leaktest use to count subchannels that hold no
// socket. Importing it turns channelz on (as importing grpc's channelz
// service does): channels created before that are not registered.
package channelzview

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	channelzpb "google.golang.org/grpc/channelz/grpc_channelz_v1"
	"google.golang.org/grpc/channelz/service"
)

// Channel is one channel of the process as channelz sees it.
type Channel struct {
	ID      int64
	Target  string
	State   string // connectivity state: READY, IDLE, ...
	Policy  string // the load-balancing policy, if channelz's trace still names it
	Created time.Time
	Calls   int64 // RPCs started
	// Subchannels are the subchannels of the channel and of its nested
	// channels (an xDS or grpclb channel's children), by id.
	Subchannels []Subchannel
}

// Subchannel is one subchannel (a grpc-go addrConn) of a channel.
type Subchannel struct {
	ID      int64
	Addr    string // the address it connects to (channelz's target)
	State   string
	Sockets int // open transports; 0 for an IDLE or CONNECTING subchannel
}

// registrar captures the channelz service implementation that grpc hands
// to a gRPC server, so that it can be called without a server, a socket or
// a connection of its own.
type registrar struct{ impl any }

func (r *registrar) RegisterService(_ *grpc.ServiceDesc, impl any) { r.impl = impl }

var (
	once sync.Once
	cz   channelzpb.ChannelzServer
)

func server() (channelzpb.ChannelzServer, error) {
	once.Do(func() {
		r := &registrar{}
		service.RegisterChannelzServiceToServer(r)
		cz, _ = r.impl.(channelzpb.ChannelzServer)
	})
	if cz == nil {
		return nil, errors.New("channelzview: grpc's channelz service did not register")
	}
	return cz, nil
}

// maxNested bounds the nested channels followed from one top channel.
const maxNested = 64

// Channels returns every top-level channel of the process, sorted by id.
func Channels() ([]Channel, error) { return channels(nil) }

// Target returns the top-level channels created with target, sorted by id;
// the subchannels of the others are not read.
func Target(target string) ([]Channel, error) {
	return channels(func(t string) bool { return t == target })
}

func channels(match func(target string) bool) ([]Channel, error) {
	s, err := server()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	var out []Channel
	start := int64(0)
	for {
		resp, err := s.GetTopChannels(ctx, &channelzpb.GetTopChannelsRequest{StartChannelId: start})
		if err != nil {
			return nil, fmt.Errorf("channelzview: %w", err)
		}
		for _, ch := range resp.GetChannel() {
			if match == nil || match(ch.GetData().GetTarget()) {
				out = append(out, convert(ctx, s, ch))
			}
			start = max(start, ch.GetRef().GetChannelId()+1)
		}
		if resp.GetEnd() || len(resp.GetChannel()) == 0 {
			break
		}
	}
	slices.SortFunc(out, func(a, b Channel) int { return int(a.ID - b.ID) })
	return out, nil
}

func convert(ctx context.Context, s channelzpb.ChannelzServer, ch *channelzpb.Channel) Channel {
	d := ch.GetData()
	c := Channel{
		ID:     ch.GetRef().GetChannelId(),
		Target: d.GetTarget(),
		State:  d.GetState().GetState().String(),
		Calls:  d.GetCallsStarted(),
		Policy: policyOf(d.GetTrace()),
	}
	if t := d.GetTrace().GetCreationTimestamp(); t != nil {
		c.Created = t.AsTime()
	}
	// The channel's own subchannels, then its nested channels'.
	todo := []*channelzpb.Channel{ch}
	for n := 0; len(todo) > 0 && n < maxNested; n++ {
		cur := todo[0]
		todo = todo[1:]
		for _, ref := range cur.GetSubchannelRef() {
			resp, err := s.GetSubchannel(ctx, &channelzpb.GetSubchannelRequest{SubchannelId: ref.GetSubchannelId()})
			if err != nil {
				continue // shut down between the two reads
			}
			sc := resp.GetSubchannel()
			c.Subchannels = append(c.Subchannels, Subchannel{
				ID:      ref.GetSubchannelId(),
				Addr:    sc.GetData().GetTarget(),
				State:   sc.GetData().GetState().GetState().String(),
				Sockets: len(sc.GetSocketRef()),
			})
		}
		for _, ref := range cur.GetChannelRef() {
			resp, err := s.GetChannel(ctx, &channelzpb.GetChannelRequest{ChannelId: ref.GetChannelId()})
			if err == nil {
				todo = append(todo, resp.GetChannel())
			}
		}
	}
	slices.SortFunc(c.Subchannels, func(a, b Subchannel) int { return int(a.ID - b.ID) })
	return c
}

// policyRE matches the trace event grpc writes when a channel takes a
// policy (balancer_wrapper.go).
var policyRE = regexp.MustCompile(`^Channel switches to new LB policy "([^"]*)"`)

// policyOf returns the last policy the channel's trace names; "" once the
// event has left channelz's bounded trace.
func policyOf(t *channelzpb.ChannelTrace) string {
	policy := ""
	for _, ev := range t.GetEvents() {
		if m := policyRE.FindStringSubmatch(ev.GetDescription()); m != nil {
			policy = m[1]
		}
	}
	return policy
}
