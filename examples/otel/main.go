// Command otel shows leakproof's metrics the way a production client
// exports them: grpc's OpenTelemetry plugin with leakproof's metrics enabled
// by name, the OpenTelemetry SDK's MeterProvider, and its Prometheus
// exporter serving /metrics on 127.0.0.1. It connects a
// leakproof_round_robin channel to two backends, resets the connection to
// one of them, and prints leakproof's series and grpc's subchannel series as
// Prometheus scrapes them: two subchannels and two sockets open, one
// connection lost with cause "reset", and the same from grpc's side.
//
//	cd examples/otel && go run .                # print, then exit
//	cd examples/otel && go run . -linger 5m     # and keep /metrics up for curl or Prometheus
//
// It is its own Go module so that leakproof's module needs no
// OpenTelemetry or Prometheus dependency. grafana-dashboard.json and
// README.md's PromQL queries turn these series into a dashboard.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	_ "github.com/leakproof/leakproof/balancer/roundrobin" // registers leakproof_round_robin
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

const timeout = 10 * time.Second // for each step to happen

func main() {
	listen := flag.String("listen", "127.0.0.1:9464", "address to serve /metrics on (9464 is the port OpenTelemetry's Prometheus exporter uses by convention)")
	linger := flag.Duration("linger", 0, "keep the channel and /metrics up this long before exiting")
	flag.Parse()
	if err := run(os.Stdout, *listen, *linger); err != nil {
		fmt.Fprintln(os.Stderr, "otel:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, listen string, linger time.Duration) (err error) {
	ms, err := startMetricsServer(listen)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err = errors.Join(err, ms.Close(ctx))
	}()

	r := manual.NewBuilderWithScheme("otel")
	var state resolver.State
	var bs []*testbackend.Backend
	for i := range 2 {
		b, err := testbackend.Start(testbackend.Name(fmt.Sprintf("backend-%d", i)))
		if err != nil {
			return err
		}
		defer b.Close()
		bs = append(bs, b)
		state.Endpoints = append(state.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: b.Addr()}}})
	}
	r.InitialState(state)
	target := r.Scheme() + ":///echo"
	cc, err := grpc.NewClient(target,
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"leakproof_round_robin":{}}]}`),
		grpc.WithContextDialer(subconn.Dialer(nil)), // sockets counted, and causes told apart
		metricsDialOption(ms.MeterProvider),
	)
	if err != nil {
		return err
	}
	defer cc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	echo := echov1.NewEchoServiceClient(cc)
	if err := waitServed(ctx, echo, bs...); err != nil {
		return err
	}
	bs[0].ResetConns() // a TCP RST: the channel loses the connection and reconnects
	if _, err := waitSeries(ctx, ms.URL, "leakproof_subchannel_connections_lost_total", "leakproof_cause", "reset", 1); err != nil {
		return err
	}
	if err := waitServed(ctx, echo, bs...); err != nil {
		return err
	}
	s, err := scrapeOnce(ctx, ms.URL)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s, 2 backends, one connection reset; scraped %s:\n", target, ms.URL)
	for _, l := range s.lines("leakproof_", "grpc_subchannel_") {
		fmt.Fprintln(w, l)
	}
	if linger > 0 {
		fmt.Fprintf(w, "serving %s for %v\n", ms.URL, linger)
		time.Sleep(linger)
	}
	return nil
}

// waitServed sends Echo RPCs until each of bs has answered one.
func waitServed(ctx context.Context, echo echov1.EchoServiceClient, bs ...*testbackend.Backend) error {
	want := map[string]bool{}
	for _, b := range bs {
		want[b.Name()] = true
	}
	for len(want) > 0 {
		resp, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"}, grpc.WaitForReady(true))
		if err != nil {
			return fmt.Errorf("waiting for %d backend(s) to answer: %w", len(want), err)
		}
		delete(want, resp.GetBackend().GetName())
	}
	return nil
}

// waitSeries scrapes url until the series of family name with label by=key
// reads want, and returns that scrape.
func waitSeries(ctx context.Context, url, name, by, key string, want float64) (scrape, error) {
	for {
		s, err := scrapeOnce(ctx, url)
		if err != nil {
			return nil, err
		}
		if got, ok := s.series(name, by, nil)[key]; ok && got == want {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s{%s=%q} never read %g: %v", name, by, key, want, s.lines(name))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
