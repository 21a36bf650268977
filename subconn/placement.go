package subconn

import (
	"strconv"
	"strings"

	"google.golang.org/grpc/resolver"
)

// Placement is where grpc runs a manager's policy, as the resolver state
// grpc hands the policy tells it. Under xDS, cluster_impl names the cluster
// (the backend service) in the state it gives its child, and
// weighted_target names the locality in the state it gives each of its
// children; elsewhere both are empty.
type Placement struct {
	// Locality is the child's locality under weighted_target, as grpc's
	// metrics print it ({region="…", zone="…", sub_zone="…"}).
	Locality string
	// BackendService is the xDS cluster whose cluster_impl the policy runs
	// under.
	BackendService string
}

// PlacementOf reads the placement from the resolver state grpc gives a
// policy. grpc exports setters but no getter for the backend service, and a
// getter for the locality only in a package whose import registers a policy,
// so both are read from the attributes' printed form, which names each key's
// type: grpc's metric labels for the same values come from the same
// attributes.
func PlacementOf(s resolver.State) Placement {
	if s.Attributes == nil {
		return Placement{}
	}
	printed := s.Attributes.String()
	return Placement{
		Locality:       printedValue(printed, "weightedtarget.localityKeyType=locality"),
		BackendService: printedValue(printed, "weightedroundrobin.backendServiceKey={}"),
	}
}

// printedValue returns the string value whose key's type prints as keyType
// in printed, an attributes.Attributes' String: `{"<%!p(T=v)>": "value" , …}`.
func printedValue(printed, keyType string) string {
	key := strconv.Quote("<%!p("+keyType+")>") + ": "
	i := strings.Index(printed, key)
	if i < 0 {
		return ""
	}
	q, err := strconv.QuotedPrefix(printed[i+len(key):])
	if err != nil {
		return ""
	}
	v, err := strconv.Unquote(q)
	if err != nil {
		return ""
	}
	return v
}

// SetPlacement tells the manager where its policy runs. A policy calls it
// with PlacementOf(state) at the start of each UpdateClientConnState, before
// its children create subchannels.
//
// The placement does two things. Its values become the optional labels
// grpc.lb.locality and grpc.lb.backend_service of the manager's metrics;
// grpc places a policy instance in one cluster and one locality for its
// whole life, so the first placement with a value is kept and a later,
// different one is logged and ignored (the gauges stay balanced). And a
// manager under an xDS cluster stamps its owner token into the address it
// gives NewSubConn (see Dialer): cluster_impl and outlier detection wrap the
// SubConn it gets back, so the token cannot be added below them afterwards,
// but they pass an address's attributes through to the dialer.
func (m *Manager) SetPlacement(p Placement) {
	if p == (Placement{}) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.placement
	switch {
	case cur == p:
		return
	case cur != (Placement{}):
		logger.Warningf("subconn: manager #%d: placement %+v ignored; it keeps %+v", m.id, p, cur)
		return
	}
	m.placement = p
	m.labels.Store(&[]string{m.target, p.BackendService, p.Locality})
}

// stampAtCreateLocked reports whether acquire stamps the owner token into the
// address it gives NewSubConn. Caller must hold m.mu.
func (m *Manager) stampAtCreateLocked() bool { return m.placement.BackendService != "" }
