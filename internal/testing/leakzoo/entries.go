package leakzoo

import (
	"context"
	"os/exec"
)

// An Entry is one shape of leak in the zoo.
type Entry struct {
	// Name names the entry: for a policy's leak, the policy's registered
	// name.
	Name string
	// Policy is the registered policy the soak runs the channel under test
	// with: the entry's own for a policy's leak, grpc's round_robin for the
	// application's.
	Policy string
	// Shape says in a line what leaks and how.
	Shape string
	// Seen names the public incident the shape is modelled on.
	Seen string
	// Socketless is true when the leaked subchannels hold no socket, so
	// that descriptor, socket and goroutine counts cannot see them.
	Socketless bool
	// App, for a leak in the application's code rather than in its
	// policy, returns the application's part for one soak.
	App func() *App
	// Leaktest, for a leak a test can make with one channel, makes it
	// against the backend at addr and returns what ends it, for leaktest
	// to find in between.
	Leaktest func(ctx context.Context, addr string) (release func(), err error)
}

// PolicySide reports whether the leak is a policy's: leakproof_guard's
// business.
func (e Entry) PolicySide() bool { return e.App == nil && e.Policy == e.Name }

// grpcRoundRobin is the policy the application's leaks are soaked with: a
// user's client on grpc's own round_robin.
const grpcRoundRobin = "round_robin"

// Entries returns the zoo, in a fixed order: the policies' leaks first,
// then the application's. Every policy's leak heals when the channel
// closes (grpc's ClientConn.Close shuts down what a policy forgot, and
// GoroutinePerReady stops its watchers), so each must be caught while the
// channel lives.
func Entries() []Entry {
	return []Entry{
		{Name: ForgetRemoved, Policy: ForgetRemoved, Shape: "a removed backend's SubConn forgotten without Shutdown", Seen: "quarkusio/quarkus#54869"},
		{Name: Twin, Policy: Twin, Shape: "two subchannels to one backend; the second forgotten and reconnected after each GOAWAY", Seen: "grpc/grpc#38871"},
		{Name: ReplaceRetained, Policy: ReplaceRetained, Shape: "retained backends' SubConns replaced on every update, the old ones never shut down", Seen: "grpc/grpc-java#10672"},
		{Name: ShutdownLast, Policy: ShutdownLast, Shape: "a new SubConn per address on every update, only the last one shut down", Seen: "hashicorp/consul#15701"},
		{Name: NewOnIdle, Policy: NewOnIdle, Shape: "a new SubConn on IDLE instead of Connect, the old one forgotten (no socket)", Seen: "grpc-go's balancer.SubConn contract", Socketless: true},
		{Name: GoroutinePerReady, Policy: GoroutinePerReady, Shape: "a goroutine per reconnect that ends only when the policy closes", Seen: "grpc/grpc-go#1936"},
		{Name: StalePicker, Policy: StalePicker, Shape: "a removed backend's SubConn kept in the picker while READY: RPCs still go to it, its socket stays", Seen: "grpc/grpc-go#2787"},
		{Name: AbandonedStream, Policy: grpcRoundRobin, App: abandonedStream, Shape: "a stream the application never finishes, on a backend the resolver removes", Seen: "grpc/grpc-go#5336"},
		{Name: ChannelPerCall, Policy: grpcRoundRobin, App: channelPerCall, Leaktest: ForgetClose, Shape: "a new channel per call, never closed", Seen: "hyperledger-labs/fabric-smart-client#1482"},
		{Name: StreamWatcher, Policy: grpcRoundRobin, App: streamWatcher, Shape: "a stream interceptor's goroutine that waits for the end of receiving, not for the stream's context", Seen: "open-telemetry/opentelemetry-go-contrib#839"},
		{Name: InheritedSocket, Policy: grpcRoundRobin, App: inheritedSocket, Leaktest: inheritSleeping, Shape: "a socket dialed without close-on-exec, inherited by the helper processes the application starts", Seen: "ishidawataru/sctp#83"},
	}
}

// inheritSleeping is InheritSocket with a child that sleeps for a minute.
func inheritSleeping(ctx context.Context, addr string) (func(), error) {
	return InheritSocket(ctx, addr, exec.Command("sleep", helperLife))
}
