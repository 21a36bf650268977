package main

import (
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// policy is the load-balancing policy the client uses. The soak in
// client_test.go runs the same one.
const policy = roundrobin.Name

// newClient stands for your client's constructor: the one place your code
// builds its *grpc.ClientConn. client_test.go tests it; adapt both.
func newClient(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.NewClient(target, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"` + policy + `":{}}]}`),
		grpc.WithContextDialer(subconn.Dialer(nil)),
		grpc.WithUnaryInterceptor(retry.UnaryClientInterceptor(
			retry.WithCodes(codes.Unavailable),
			retry.WithMax(5),
		)),
	}, opts...)...)
}
