package soak_test

import (
	"context"
	"fmt"
	"time"

	"github.com/leakproof/leakproof/soak"
)

// A short soak of leakproof_round_robin through a GOAWAY storm: backends
// on 127.0.0.1, RPC load, the storm, then the verdict. Leave Faults nil to
// run every fault, and make Duration longer to soak longer.
func ExampleRun() {
	res, err := soak.Run(context.Background(), soak.Config{
		Duration: 3 * time.Second,
		Faults:   []soak.Fault{soak.FaultGoAway},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("pass:", res.Pass)
	for _, c := range res.Checks {
		if !c.Info {
			fmt.Printf("%s: %v\n", c.Name, c.Pass)
		}
	}
	// Output:
	// pass: true
	// RPC failures: true
	// removed backends released: true
	// sockets per backend: true
	// subchannels explained: true
	// closed channels released: true
	// backend connections explained: true
	// client descriptors and goroutines explained: true
	// no growth: true
	// refcount trace: true
	// goroutines at baseline: true
	// descriptors at baseline: true
	// sockets at baseline: true
	// faults injected: true
}

// Choosing faults the way the command's --faults flag does.
func ExampleParseFaults() {
	faults, err := soak.ParseFaults("-tls,-churn")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(faults)
	_, err = soak.ParseFaults("goaway,meteor")
	fmt.Println(err != nil)
	// Output:
	// [goaway dup overlap rst freeze flap resolver-error empty restart exec starve]
	// true
}
