// Command ci is the client that client_test.go tests: copy client_test.go
// and github-workflow.yml into your repository, and point them at your own
// client's constructor (newClient here) and policy.
//
//	go test -race ./examples/ci   # what CI runs: leaktest around the client, then a short soak
//	go run ./examples/ci          # the client on its own, against a backend on loopback
//
// The workflow runs `go test -race ./...` and a 60-second `leakproof soak`
// whose HTML report it keeps as an artifact.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/testbackend"
)

const timeout = 10 * time.Second

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ci:", err)
		os.Exit(1)
	}
}

// run uses the client as an application would, then closes it and checks
// that no socket to the backend is left.
func run(w io.Writer) error {
	b, err := testbackend.Start()
	if err != nil {
		return err
	}
	defer b.Close()
	cc, err := newClient("passthrough:///" + b.Addr())
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i := range 3 {
		resp, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: fmt.Sprint("call ", i)})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s: %s\n", resp.GetMessage(), "OK")
	}
	n, err := leaktest.SocketsTo(b.Addr())
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "client (%s): %d socket to the backend\n", policy, n)
	cc.Close()
	for deadline := time.Now().Add(timeout); n > 0; time.Sleep(10 * time.Millisecond) {
		if n, err = leaktest.SocketsTo(b.Addr()); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d sockets to the backend %v after Close", n, timeout)
		}
	}
	fmt.Fprintln(w, "closed: 0 sockets to the backend")
	fmt.Fprintln(w, "now: go test -race ./examples/ci (leaktest and a short soak), as CI does")
	return nil
}
