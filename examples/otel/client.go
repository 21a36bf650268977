package main

import (
	"github.com/leakproof/leakproof/subconn"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats/opentelemetry"
)

// grpc's own subchannel metrics (gRFC A94), off by default like leakproof's.
const (
	grpcOpenConnections    = "grpc.subchannel.open_connections"
	grpcDisconnections     = "grpc.subchannel.disconnections"
	grpcAttemptsSucceeded  = "grpc.subchannel.connection_attempts_succeeded"
	grpcAttemptsFailed     = "grpc.subchannel.connection_attempts_failed"
	grpcDisconnectErrLabel = "grpc.disconnect_error" // optional label of grpc.subchannel.disconnections
)

// metricsDialOption installs grpc's OpenTelemetry plugin on a channel,
// reporting to mp: grpc's default per-call metrics, grpc's subchannel
// metrics with the reason of each disconnection, and leakproof's four
// metrics. Metrics that are not enabled by name here are not recorded.
func metricsDialOption(mp metric.MeterProvider) grpc.DialOption {
	return opentelemetry.DialOption(opentelemetry.Options{
		MetricsOptions: opentelemetry.MetricsOptions{
			MeterProvider: mp,
			Metrics: opentelemetry.DefaultMetrics().Add(
				subconn.MetricSubchannelsOpen,
				subconn.MetricSocketsOpen,
				subconn.MetricConnectionsLost,
				subconn.MetricLeaks,
				grpcOpenConnections,
				grpcDisconnections,
				grpcAttemptsSucceeded,
				grpcAttemptsFailed,
			),
			OptionalLabels: []string{grpcDisconnectErrLabel},
		},
	})
}
