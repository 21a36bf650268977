package xdsplane

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	v3xdstypepb "github.com/cncf/xds/go/xds/type/v3"
	v3clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	v3corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	v3endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	v3listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	v3routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	v3routerpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	v3httppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	v3wrrlocalitypb "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/wrr_locality/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Resources is one complete set of xDS resources for a node. Every Update
// publishes a whole set: a resource left out is deleted.
type Resources struct {
	Listeners []*v3listenerpb.Listener
	Routes    []*v3routepb.RouteConfiguration
	Clusters  []*v3clusterpb.Cluster
	Endpoints []*v3endpointpb.ClusterLoadAssignment
}

// Policy selects a cluster's load-balancing policy.
type Policy struct {
	// Name is a registered gRPC policy name (leakproof_round_robin,
	// round_robin, …). Empty leaves load_balancing_policy unset: gRPC then
	// uses the Cluster's lb_policy, ROUND_ROBIN, which it runs as
	// xds_wrr_locality over round_robin.
	Name string
	// Config is the policy's JSON config object; empty means {}.
	Config string
	// WrrLocality makes the policy the endpoint-picking policy of an
	// envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality:
	// gRPC then weights the localities of each priority (xds_wrr_locality)
	// and runs one instance of the policy per locality.
	WrrLocality bool
}

// LoadBalancingPolicy returns the Cluster.load_balancing_policy that selects
// p: one policy whose typed config is an xds.type.v3.TypedStruct with
// type_url type.googleapis.com/<p.Name> and p.Config as its value. gRPC
// (xdslbregistry) turns it into the service config [{"<name>": <config>}].
func (p Policy) LoadBalancingPolicy() (*v3clusterpb.LoadBalancingPolicy, error) {
	cfg := p.Config
	if cfg == "" {
		cfg = "{}"
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(cfg), &m); err != nil {
		return nil, fmt.Errorf("xdsplane: config of %s is not a JSON object: %w", p.Name, err)
	}
	value, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("xdsplane: config of %s: %w", p.Name, err)
	}
	ts, err := anypb.New(&v3xdstypepb.TypedStruct{TypeUrl: "type.googleapis.com/" + p.Name, Value: value})
	if err != nil {
		return nil, fmt.Errorf("xdsplane: TypedStruct for %s: %w", p.Name, err)
	}
	lbp := &v3clusterpb.LoadBalancingPolicy{Policies: []*v3clusterpb.LoadBalancingPolicy_Policy{{
		TypedExtensionConfig: &v3corepb.TypedExtensionConfig{Name: p.Name, TypedConfig: ts},
	}}}
	if !p.WrrLocality {
		return lbp, nil
	}
	wrr, err := anypb.New(&v3wrrlocalitypb.WrrLocality{EndpointPickingPolicy: lbp})
	if err != nil {
		return nil, fmt.Errorf("xdsplane: WrrLocality for %s: %w", p.Name, err)
	}
	return &v3clusterpb.LoadBalancingPolicy{Policies: []*v3clusterpb.LoadBalancingPolicy_Policy{{
		TypedExtensionConfig: &v3corepb.TypedExtensionConfig{Name: "wrr_locality", TypedConfig: wrr},
	}}}, nil
}

// Listener returns the client-side Listener named target (the host of an
// xds:/// target): an ApiListener holding an HttpConnectionManager with the
// router filter that fetches the RouteConfiguration named route over ADS.
func Listener(target, route string) *v3listenerpb.Listener {
	router, err := anypb.New(&v3routerpb.Router{})
	if err != nil {
		panic(fmt.Sprintf("xdsplane: marshal Router: %v", err)) // a fixed, valid message
	}
	hcm, err := anypb.New(&v3httppb.HttpConnectionManager{
		RouteSpecifier: &v3httppb.HttpConnectionManager_Rds{Rds: &v3httppb.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: route,
		}},
		HttpFilters: []*v3httppb.HttpFilter{{
			Name:       wellknown.Router,
			ConfigType: &v3httppb.HttpFilter_TypedConfig{TypedConfig: router},
		}},
	})
	if err != nil {
		panic(fmt.Sprintf("xdsplane: marshal HttpConnectionManager: %v", err))
	}
	return &v3listenerpb.Listener{
		Name:        target,
		ApiListener: &v3listenerpb.ApiListener{ApiListener: hcm},
	}
}

// RouteConfig returns a RouteConfiguration named name that sends every RPC
// for domain to cluster.
func RouteConfig(name, domain, cluster string) *v3routepb.RouteConfiguration {
	return &v3routepb.RouteConfiguration{
		Name: name,
		VirtualHosts: []*v3routepb.VirtualHost{{
			Domains: []string{domain},
			Routes: []*v3routepb.Route{{
				Match: &v3routepb.RouteMatch{PathSpecifier: &v3routepb.RouteMatch_Prefix{Prefix: "/"}},
				Action: &v3routepb.Route_Route{Route: &v3routepb.RouteAction{
					ClusterSpecifier: &v3routepb.RouteAction_Cluster{Cluster: cluster},
				}},
			}},
		}},
	}
}

// Cluster returns an EDS Cluster named name whose endpoints are the
// ClusterLoadAssignment named edsService, balanced by p.
func Cluster(name, edsService string, p Policy) (*v3clusterpb.Cluster, error) {
	c := &v3clusterpb.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &v3clusterpb.Cluster_Type{Type: v3clusterpb.Cluster_EDS},
		EdsClusterConfig:     &v3clusterpb.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: edsService},
		LbPolicy:             v3clusterpb.Cluster_ROUND_ROBIN,
	}
	if p.Name != "" {
		lbp, err := p.LoadBalancingPolicy()
		if err != nil {
			return nil, err
		}
		c.LoadBalancingPolicy = lbp
	}
	return c, nil
}

// A Locality is one group of endpoints in a ClusterLoadAssignment.
type Locality struct {
	// Name is the locality's sub-zone; localities of one priority need
	// distinct names.
	Name string
	// Priority: 0 is the highest. gRPC fails over to the next priority
	// when every locality of the higher one is unreachable.
	Priority uint32
	// Weight of the locality within its priority; 0 means 1.
	Weight uint32
	// Endpoints are host:port addresses, one endpoint each. IP literals
	// are sent as written ("::ffff:127.0.0.1" stays mapped).
	Endpoints []string
	// Groups are endpoints of several addresses each, after Endpoints: the
	// first is the endpoint's address, the others its additional_addresses
	// (gRFC A61), which gRPC hands a policy as one resolver.Endpoint.
	Groups [][]string
}

// ClusterLoadAssignment returns the EDS resource named edsService with the
// given localities.
func ClusterLoadAssignment(edsService string, localities ...Locality) (*v3endpointpb.ClusterLoadAssignment, error) {
	cla := &v3endpointpb.ClusterLoadAssignment{ClusterName: edsService}
	for _, l := range localities {
		w := l.Weight
		if w == 0 {
			w = 1
		}
		lle := &v3endpointpb.LocalityLbEndpoints{
			Locality:            &v3corepb.Locality{Region: "region", Zone: "zone", SubZone: l.Name},
			LoadBalancingWeight: wrapperspb.UInt32(w),
			Priority:            l.Priority,
		}
		groups := make([][]string, 0, len(l.Endpoints)+len(l.Groups))
		for _, ep := range l.Endpoints {
			groups = append(groups, []string{ep})
		}
		groups = append(groups, l.Groups...)
		for _, g := range groups {
			if len(g) == 0 {
				return nil, fmt.Errorf("xdsplane: an endpoint with no address in locality %q", l.Name)
			}
			ep := &v3endpointpb.Endpoint{}
			for i, addr := range g {
				a, err := socketAddress(addr)
				if err != nil {
					return nil, fmt.Errorf("xdsplane: endpoint %q in locality %q: %w", addr, l.Name, err)
				}
				if i == 0 {
					ep.Address = a
				} else {
					ep.AdditionalAddresses = append(ep.AdditionalAddresses, &v3endpointpb.Endpoint_AdditionalAddress{Address: a})
				}
			}
			lle.LbEndpoints = append(lle.LbEndpoints, &v3endpointpb.LbEndpoint{
				HostIdentifier:      &v3endpointpb.LbEndpoint_Endpoint{Endpoint: ep},
				LoadBalancingWeight: wrapperspb.UInt32(1),
			})
		}
		cla.Endpoints = append(cla.Endpoints, lle)
	}
	return cla, nil
}

// socketAddress parses host:port into an xDS TCP socket address.
func socketAddress(addr string) (*v3corepb.Address, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port: %w", err)
	}
	return &v3corepb.Address{Address: &v3corepb.Address_SocketAddress{SocketAddress: &v3corepb.SocketAddress{
		Protocol:      v3corepb.SocketAddress_TCP,
		Address:       host,
		PortSpecifier: &v3corepb.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}, nil
}

// A ClusterSpec describes one EDS cluster: its name, its policy and its
// endpoints. Its ClusterLoadAssignment is named after the cluster.
type ClusterSpec struct {
	Name       string
	Policy     Policy
	Localities []Locality
}

// Service returns the resources of one xds:///target whose route sends
// every RPC to the cluster named route, with the clusters described. Route
// may name a cluster that is not in clusters (the client then fails RPCs
// until it appears).
func Service(target, route string, clusters ...ClusterSpec) (Resources, error) {
	routeName := "route-" + target
	res := Resources{
		Listeners: []*v3listenerpb.Listener{Listener(target, routeName)},
		Routes:    []*v3routepb.RouteConfiguration{RouteConfig(routeName, target, route)},
	}
	for _, cs := range clusters {
		c, err := Cluster(cs.Name, "eds-"+cs.Name, cs.Policy)
		if err != nil {
			return Resources{}, err
		}
		cla, err := ClusterLoadAssignment("eds-"+cs.Name, cs.Localities...)
		if err != nil {
			return Resources{}, err
		}
		res.Clusters = append(res.Clusters, c)
		res.Endpoints = append(res.Endpoints, cla)
	}
	return res, nil
}

// Merge returns the union of sets of resources (for several services on
// one node).
func Merge(sets ...Resources) Resources {
	var out Resources
	for _, s := range sets {
		out.Listeners = append(out.Listeners, s.Listeners...)
		out.Routes = append(out.Routes, s.Routes...)
		out.Clusters = append(out.Clusters, s.Clusters...)
		out.Endpoints = append(out.Endpoints, s.Endpoints...)
	}
	return out
}

func adsSource() *v3corepb.ConfigSource {
	return &v3corepb.ConfigSource{ConfigSourceSpecifier: &v3corepb.ConfigSource_Ads{Ads: &v3corepb.AggregatedConfigSource{}}}
}

// clone deep-copies a slice of messages, so that a caller changing a
// resource after Update cannot change what the server holds.
func clone[M proto.Message](in []M) []M {
	out := make([]M, len(in))
	for i, m := range in {
		out[i] = proto.Clone(m).(M)
	}
	return out
}
