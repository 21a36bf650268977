package admin

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"google.golang.org/grpc"
	channelzpb "google.golang.org/grpc/channelz/grpc_channelz_v1"
	channelzservice "google.golang.org/grpc/channelz/service"
)

// The join with grpc's channelz. A policy never sees its SubConn's channelz
// id, and grpc's channelz registry is internal, so the only public view is
// the channelz service. Its implementation is read in-process (no network
// call) through a registrar that keeps the service instead of serving it.
//
// The join key is a socket's local and remote address: among the sockets
// open in one network namespace a TCP 4-tuple is unique, and leakproof's
// dialer and grpc's transport see the same net.Conn. A subchannel's channelz
// id is the parent of its sockets. Not joinable: a subchannel with no socket
// open (IDLE, CONNECTING, or shut down and drained: it has no channelz
// socket and its address alone is ambiguous, exactly when two subchannels
// share a backend), a socket channelz no longer lists (closed), sockets
// whose addresses are not unique (Unix sockets, whose client side has no
// local name), and for its first socketSettle a new socket of a subchannel
// that is not READY (see readable): those get 0.

// channelzServer is grpc's channelz service implementation.
var channelzServer = sync.OnceValue(func() channelzpb.ChannelzServer {
	var r keepRegistrar
	channelzservice.RegisterChannelzServiceToServer(&r)
	cz, _ := r.impl.(channelzpb.ChannelzServer)
	return cz
})

// keepRegistrar is a grpc.ServiceRegistrar that keeps the implementation.
type keepRegistrar struct{ impl any }

func (r *keepRegistrar) RegisterService(_ *grpc.ServiceDesc, impl any) { r.impl = impl }

// czIDs are the channelz ids of one socket and its parents.
type czIDs struct {
	socket, subchannel, channel int64
}

// socketAddrs is the join key: a socket's local and remote address in
// canonical form (see canonAddr).
type socketAddrs struct{ local, remote string }

// channelzIndex maps the sockets of every subchannel channelz knows to
// their ids. Ambiguous keys map to the zero czIDs.
type channelzIndex struct {
	built     time.Time
	sockets   map[socketAddrs]czIDs
	firstSeen map[int64]time.Time // socket id -> when a build first listed it
}

// channelzCache is the latest index: a paging client asks for many pages
// in a row, and walking channelz costs a call per subchannel and socket.
var channelzCache struct {
	mu  sync.Mutex
	idx *channelzIndex
}

// channelzMaxAge is how long an index serves lookups that it answers.
const channelzMaxAge = time.Second

// channelzJoin returns a lookup of socket addresses in channelz. A lookup
// that misses in an index built before the call started rebuilds it once:
// a socket opened since the last build is found.
func channelzJoin(ctx context.Context) func(local, remote string) czIDs {
	start := time.Now()
	rebuilt := false
	return func(local, remote string) czIDs {
		k := socketAddrs{canonAddr(local), canonAddr(remote)}
		if k.local == "" || k.remote == "" {
			return czIDs{}
		}
		channelzCache.mu.Lock()
		defer channelzCache.mu.Unlock()
		idx := channelzCache.idx
		if idx == nil || time.Since(idx.built) > channelzMaxAge {
			idx = buildChannelzIndex(ctx, idx)
			channelzCache.idx, rebuilt = idx, true
		}
		ids, ok := idx.sockets[k]
		if !ok && !rebuilt && idx.built.Before(start) {
			idx = buildChannelzIndex(ctx, idx)
			channelzCache.idx, rebuilt = idx, true
			ids = idx.sockets[k]
		}
		return ids
	}
}

// buildChannelzIndex walks every channel, nested channel, subchannel and
// socket channelz lists. Errors (a channel closing during the walk) leave
// that part out. prev (may be nil) says when sockets were first listed.
func buildChannelzIndex(ctx context.Context, prev *channelzIndex) *channelzIndex {
	idx := &channelzIndex{built: time.Now(), sockets: map[socketAddrs]czIDs{}, firstSeen: map[int64]time.Time{}}
	cz := channelzServer()
	if cz == nil {
		return idx
	}
	seen := map[socketAddrs]bool{}
	var walkChannel func(ch *channelzpb.Channel, top int64)
	walkChannel = func(ch *channelzpb.Channel, top int64) {
		for _, ref := range ch.GetChannelRef() {
			if r, err := cz.GetChannel(ctx, &channelzpb.GetChannelRequest{ChannelId: ref.GetChannelId()}); err == nil {
				walkChannel(r.GetChannel(), top)
			}
		}
		for _, ref := range ch.GetSubchannelRef() {
			r, err := cz.GetSubchannel(ctx, &channelzpb.GetSubchannelRequest{SubchannelId: ref.GetSubchannelId()})
			if err != nil {
				continue
			}
			st := r.GetSubchannel().GetData().GetState().GetState()
			for _, sref := range r.GetSubchannel().GetSocketRef() {
				first, ok := prev.seen(sref.GetSocketId())
				if !ok {
					first = idx.built
				}
				idx.firstSeen[sref.GetSocketId()] = first
				if !readable(st, first) {
					continue
				}
				sr, err := getSocket(ctx, cz, sref.GetSocketId())
				if err != nil {
					continue
				}
				k := socketAddrs{protoAddr(sr.GetSocket().GetLocal()), protoAddr(sr.GetSocket().GetRemote())}
				if k.local == "" || k.remote == "" {
					continue
				}
				if seen[k] { // two sockets, one key: name neither
					idx.sockets[k] = czIDs{}
					continue
				}
				seen[k] = true
				idx.sockets[k] = czIDs{socket: sref.GetSocketId(), subchannel: ref.GetSubchannelId(), channel: top}
			}
		}
	}
	var start int64
	for {
		r, err := cz.GetTopChannels(ctx, &channelzpb.GetTopChannelsRequest{StartChannelId: start})
		if err != nil {
			return idx
		}
		for _, ch := range r.GetChannel() {
			id := ch.GetRef().GetChannelId()
			walkChannel(ch, id)
			start = max(start, id+1)
		}
		if r.GetEnd() || len(r.GetChannel()) == 0 {
			return idx
		}
	}
}

// readable reports whether GetSocket may read socket id of a subchannel
// in state st, first listed at first.
//
// grpc registers a client socket with channelz before its transport is
// fully built (grpc-go 1.85, newHTTP2Client: RegisterSocket, then
// controlBuf), and GetSocket reads the transport's flow-control window
// through controlBuf: read in that window, it races with the construction
// and may dereference a nil controlBuf. A READY subchannel has published
// its transport's construction with its state (read atomically before its
// sockets). Any other socket is read once it has been listed for
// socketSettle: construction is straight-line code that ends long before,
// and the transport then either reports READY through channelz (taking the
// lock GetSocket takes) or closes and leaves the list. So a new socket of a
// subchannel that is not READY (the sockets of a shut-down subchannel that
// are still open, a draining socket) shows its id from the second look on.
func readable(st channelzpb.ChannelConnectivityState_State, first time.Time) bool {
	return st == channelzpb.ChannelConnectivityState_READY || time.Since(first) >= socketSettle
}

// socketSettle is how long a socket is listed before GetSocket reads it
// when its subchannel is not READY (see readable).
const socketSettle = 100 * time.Millisecond

// getSocket is cz.GetSocket, with a panic in grpc (see readable)
// turned into an error: reading a debug view must never crash the process.
func getSocket(ctx context.Context, cz channelzpb.ChannelzServer, id int64) (resp *channelzpb.GetSocketResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("channelz GetSocket(%d) panicked: %v", id, r)
		}
	}()
	return cz.GetSocket(ctx, &channelzpb.GetSocketRequest{SocketId: id})
}

// seen returns when socket id was first listed; idx may be nil.
func (idx *channelzIndex) seen(id int64) (time.Time, bool) {
	if idx == nil {
		return time.Time{}, false
	}
	t, ok := idx.firstSeen[id]
	return t, ok
}

// protoAddr returns a channelz TCP address in canonAddr's form, or "".
func protoAddr(a *channelzpb.Address) string {
	tcp := a.GetTcpipAddress()
	if tcp == nil {
		return ""
	}
	ip, ok := netip.AddrFromSlice(tcp.GetIpAddress())
	if !ok {
		return ""
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(tcp.GetPort())).String()
}

// canonAddr returns a host:port from net.Addr.String in canonical form
// (IPv4-mapped IPv6 unmapped; the zone dropped, as channelz drops it), or
// "" if it is not an IP address and port.
func canonAddr(s string) string {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ""
	}
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()).String()
}
