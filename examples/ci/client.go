package main

import (
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// policy is the load-balancing policy the client uses, in serviceConfig.
const policy = roundrobin.Name

// serviceConfig is the client's service config. client_test.go soaks the
// client with it.
const serviceConfig = `{"loadBalancingConfig":[{"` + policy + `":{"drainTimeout":"1s"}}]}`

// dialOptions are the client's dial options, without its credentials,
// dialer and service config: client_test.go soaks the client with them
// (soak.Config.DialOptions), and the soak refuses options that would take
// over its own credentials, dialer or service config.
func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithUnaryInterceptor(retry.UnaryClientInterceptor(
			retry.WithCodes(codes.Unavailable),
			retry.WithMax(5),
		)),
	}
}

// newClient stands for your client's constructor: the one place your code
// builds its *grpc.ClientConn. client_test.go tests it and soaks its
// service config and dial options; adapt all three.
func newClient(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts = append(append(dialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(subconn.Dialer(nil)),
		grpc.WithDefaultServiceConfig(serviceConfig)), opts...)
	return grpc.NewClient(target, opts...)
}
