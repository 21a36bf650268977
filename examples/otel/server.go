package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metricsServer is the OpenTelemetry SDK's MeterProvider read by its
// Prometheus exporter, served over HTTP at /metrics.
type metricsServer struct {
	// Initialized by startMetricsServer, read-only after.
	MeterProvider *sdkmetric.MeterProvider
	URL           string // http://host:port/metrics
	srv           *http.Server
	served        chan error // receives Serve's result once
}

// startMetricsServer serves /metrics on addr (host:port; port 0 picks one).
// Close it to stop the server and the MeterProvider.
func startMetricsServer(addr string) (*metricsServer, error) {
	// A registry of its own rather than Prometheus's global default: the
	// page shows what the MeterProvider exports and nothing else.
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("metrics: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		_ = mp.Shutdown(context.Background())
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s := &metricsServer{
		MeterProvider: mp,
		URL:           "http://" + lis.Addr().String() + "/metrics",
		srv:           &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		served:        make(chan error, 1),
	}
	go func() { s.served <- s.srv.Serve(lis) }()
	return s, nil
}

// Close stops serving, waits for the server to return and shuts the
// MeterProvider down. Channels that report to it should be closed first.
func (s *metricsServer) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, s.MeterProvider.Shutdown(ctx))
}
