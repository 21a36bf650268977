// Package xdsplane runs a real xDS management server on 127.0.0.1 for
// leakproof's tests and soak: envoyproxy/go-control-plane's ADS server and
// snapshot cache, resource builders for the Listener → RouteConfiguration →
// Cluster → ClusterLoadAssignment chain a gRPC client follows, and an xDS
// resolver for `xds:///…` targets built from a bootstrap that points at the
// server.
//
// It ships, not only in tests, because the soak's xDS mode (soak --xds)
// feeds its channels from this control plane: the soak pushes EDS churn,
// CDS switches and NACKed configs to a real client, which needs a real
// management server in the soak's own process.
//
// Start a server, publish resources, dial through its resolver:
//
//	srv, err := xdsplane.Start(xdsplane.Options{})
//	defer srv.Close()
//	res := xdsplane.Service("svc", "cluster-a", xdsplane.Policy{Name: "leakproof_round_robin"},
//		xdsplane.Locality{Name: "z1", Endpoints: []string{addr1, addr2}})
//	srv.Update(ctx, res)
//	r, err := srv.Resolver()
//	cc, err := grpc.NewClient("xds:///svc", grpc.WithResolvers(r), …)
//
// The server never resends a version the client rejected. go-control-plane's
// snapshot cache answers every request whose version differs from its
// snapshot, and a NACK carries the version the client still holds: left
// alone, the cache pushes the rejected version again at once, in a loop.
// On a NACK the server rolls that resource type back to the version the
// client holds (a real control plane does the same or stops pushing) and
// records the NACK for the test to inspect ([Server.NACKs],
// [Server.WaitNACK]). The rollback is per node, as the snapshot cache is,
// and only of the version the cache holds now: a late NACK of an older
// version (another client's, or one overtaken by a newer Update) changes
// nothing.
//
// Versions are per resource type and change only when a type's resources
// change, so an EDS push reaches the client as an EDS update alone.
package xdsplane
