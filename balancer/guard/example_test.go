package guard_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/leakproof/leakproof/balancer/guard"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/roundrobin"
)

// A service config that runs grpc's weighted_round_robin under the guard,
// falling back to round_robin where weighted_round_robin is not
// registered. Pass it to grpc.WithDefaultServiceConfig, together with
// grpc.WithContextDialer(subconn.Dialer(nil)) so that the guard owns every
// socket.
func Example() {
	const serviceConfig = `{"loadBalancingConfig": [{"leakproof_guard": {
		"childPolicy": [{"weighted_round_robin": {}}, {"round_robin": {}}],
		"orphanTimeout": "30s",
		"orphans": "reclaim"
	}}]}`
	var sc struct {
		LB []map[string]json.RawMessage `json:"loadBalancingConfig"`
	}
	if err := json.Unmarshal([]byte(serviceConfig), &sc); err != nil {
		panic(err)
	}
	_, err := balancer.Get(guard.Name).(balancer.ConfigParser).ParseConfig(sc.LB[0][guard.Name])
	fmt.Println("valid:", err == nil)
	// Output: valid: true
}

// A config error names the field at fault.
func Example_badConfig() {
	parser := balancer.Get(guard.Name).(balancer.ConfigParser)
	for _, js := range []string{
		`{"childPolicy": []}`,
		`{"childPolicy": [{"no_such_policy": {}}]}`,
		`{"childPolicy": [{"round_robin": {}}], "orphans": "ignore"}`,
	} {
		_, err := parser.ParseConfig(json.RawMessage(js))
		fmt.Println(err)
	}
	// Output:
	// leakproof_guard: invalid config: childPolicy: is empty: name at least one policy
	// leakproof_guard: invalid config: childPolicy: none of the policies no_such_policy is registered (import the package that registers one)
	// leakproof_guard: invalid config: orphans "ignore": want "reclaim" or "report"
}

// myBuilder stands for a policy of your own.
type myBuilder struct{ balancer.Builder }

func (myBuilder) Name() string { return "my_round_robin" }

// Wrap registers a policy of your own already guarded: service configs name
// it as usual ({"my_round_robin": {}}) and get it leak-proof.
func ExampleWrap() {
	b := guard.Wrap(myBuilder{balancer.Get(roundrobin.Name)}, guard.WithOrphanTimeout(time.Minute))
	balancer.Register(b) // in an init function
	fmt.Println(balancer.Get("my_round_robin").Name())
	// Output: my_round_robin
}
