package leakzoo

// An Entry is one shape of leak in the zoo.
type Entry struct {
	// Policy is the registered name of the policy that leaks this way.
	Policy string
	// Shape says in a line what leaks and how.
	Shape string
	// Seen names the public incident the shape is modelled on.
	Seen string
	// Socketless is true when the leaked subchannels hold no socket, so
	// that descriptor, socket and goroutine counts cannot see them.
	Socketless bool
}

// Entries returns the policy-side leaks of the zoo, in a fixed order.
// Every one heals when the channel closes (grpc's ClientConn.Close shuts
// down what a policy forgot, and GoroutinePerReady stops its watchers), so
// each must be caught while the channel lives.
func Entries() []Entry {
	return []Entry{
		{Policy: ForgetRemoved, Shape: "a removed backend's SubConn forgotten without Shutdown", Seen: "quarkusio/quarkus#54869"},
		{Policy: Twin, Shape: "two subchannels to one backend; the second forgotten and reconnected after each GOAWAY", Seen: "grpc/grpc#38871"},
		{Policy: ReplaceRetained, Shape: "retained backends' SubConns replaced on every update, the old ones never shut down", Seen: "grpc/grpc-java#10672"},
		{Policy: ShutdownLast, Shape: "a new SubConn per address on every update, only the last one shut down", Seen: "hashicorp/consul#15701"},
		{Policy: NewOnIdle, Shape: "a new SubConn on IDLE instead of Connect, the old one forgotten (no socket)", Seen: "grpc-go's balancer.SubConn contract", Socketless: true},
		{Policy: GoroutinePerReady, Shape: "a goroutine per reconnect that ends only when the policy closes", Seen: "grpc/grpc-go#1936"},
	}
}
