// Package inventory is a user's client, in a module of its own: its
// service, its channel's service config and dial options, and the test
// that soaks them with leakproof's soak (client_test.go). Nothing in it
// uses leakproof's internal packages: it is what a user can write.
package inventory

import (
	"context"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/wrapperspb"

	_ "github.com/leakproof/leakproof/balancer/guard" // leakproof_guard, named by serviceConfig
	_ "google.golang.org/grpc/balancer/weightedroundrobin"
)

// serviceConfig is the client's service config: leakproof's guard over
// grpc's weighted_round_robin, with the parameters of both.
const serviceConfig = `{"loadBalancingConfig":[{"leakproof_guard":{
	"childPolicy":[{"weighted_round_robin":{"enableOobLoadReport":false,"blackoutPeriod":"1s","weightUpdatePeriod":"0.5s"}}],
	"drainTimeout":"1s","orphanTimeout":"500ms"}}]}`

// Client counts the client's own calls, as the client's metrics would.
type Client struct {
	Calls atomic.Int64 // Count calls seen by the client's interceptor
}

// DialOptions are the client's dial options, without its credentials,
// dialer and service config (which the soak supplies): keepalive and an
// interceptor that counts the calls of the inventory service.
func (c *Client) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 20 * time.Second, PermitWithoutStream: false}),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if method == countMethod {
				c.Calls.Add(1)
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
	}
}

// Count is the client's RPC: how many of an item are in stock.
func Count(ctx context.Context, cc grpc.ClientConnInterface, item string) (int64, error) {
	out := new(wrapperspb.Int64Value)
	if err := cc.Invoke(ctx, countMethod, wrapperspb.String(item), out); err != nil {
		return 0, err
	}
	return out.GetValue(), nil
}

// The inventory service, written without generated code: one unary method
// on well-known message types.
const (
	serviceName = "inventory.v1.Inventory"
	countMethod = "/" + serviceName + "/Count"
)

// Server serves the inventory service and counts the calls it served.
type Server struct {
	Served atomic.Int64
}

// Register registers s on gs.
func (s *Server) Register(gs *grpc.Server) {
	gs.RegisterService(&grpc.ServiceDesc{
		ServiceName: serviceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Count",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.StringValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				s.Served.Add(1)
				return wrapperspb.Int64(int64(len(in.GetValue()))), nil
			},
		}},
	}, s)
}
