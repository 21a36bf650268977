package testbackend_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/testbackend"
)

func ExampleStart() {
	b, err := testbackend.Start(testbackend.Name("backend-a"))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	cc, err := grpc.NewClient(b.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "hello"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetMessage(), "from", resp.GetBackend().GetName())
	fmt.Println("server saw", b.Stats().RPCs, "RPC")
	// Output:
	// hello from backend-a
	// server saw 1 RPC
}

func ExampleBackend_ResetConns() {
	b, err := testbackend.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	cc, err := grpc.NewClient(b.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A Hold stream keeps a call in flight on the connection.
	stream, err := echov1.NewEchoServiceClient(cc).Hold(ctx, &echov1.HoldRequest{Label: "in flight"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		log.Fatal(err)
	}

	fmt.Println("reset", b.ResetConns(), "connection")
	_, err = stream.Recv()
	fmt.Println("stream:", status.Code(err))
	// Output:
	// reset 1 connection
	// stream: Unavailable
}

func ExampleNewCA() {
	ca, err := testbackend.NewCA()
	if err != nil {
		log.Fatal(err)
	}
	stranger, err := testbackend.NewCA()
	if err != nil {
		log.Fatal(err)
	}
	b, err := testbackend.Start(testbackend.TLS(ca))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	for _, client := range []struct {
		name string
		ca   *testbackend.CA
	}{{"trusts the CA", ca}, {"trusts another CA", stranger}} {
		cc, err := grpc.NewClient(b.Addr(), grpc.WithTransportCredentials(client.ca.ClientCredentials()))
		if err != nil {
			log.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "hi"})
		cancel()
		cc.Close()
		fmt.Printf("client that %s: %v\n", client.name, status.Code(err))
	}
	// Output:
	// client that trusts the CA: OK
	// client that trusts another CA: Unavailable
}
