package subconn

import (
	estats "google.golang.org/grpc/experimental/stats"
)

// Metrics reported through the channel's grpc MetricsRecorder, so grpc's
// OpenTelemetry plugin exports them like grpc's own subchannel metrics. Like
// those, they are off by default: enable them by name in the plugin's
// options (e.g. stats.NewMetrics(subconn.MetricSubchannelsOpen, ...)).
const (
	MetricSubchannelsOpen  = "leakproof.subchannels.open" // gauge: subchannels not yet destroyed
	MetricSocketsOpen      = "leakproof.sockets.open"     // gauge: sockets owned (needs Dialer)
	MetricConnectionsLost  = "leakproof.connections_lost" // counter, by leakproof.cause (Cause*)
	MetricLeaks            = "leakproof.leaks"            // counter, by leakproof.leak_kind
	labelTarget            = "grpc.target"                // the channel target
	labelCause             = "leakproof.cause"            // why a READY connection was lost
	labelLeakKind          = "leakproof.leak_kind"        // what the manager had to force
	leakUnreleasedHolder   = "unreleased_holder"          // a reference Close had to drop
	leakDrainTimeoutSocket = "drain_timeout"              // a socket force-closed after Shutdown
)

var (
	subchannelsOpenMetric = estats.RegisterInt64AsyncGauge(estats.MetricDescriptor{
		Name:        MetricSubchannelsOpen,
		Description: "Subchannels of leakproof policies that are not yet destroyed (held, or shut down with sockets draining).",
		Unit:        "{subchannel}",
		Labels:      []string{labelTarget},
	})
	socketsOpenMetric = estats.RegisterInt64AsyncGauge(estats.MetricDescriptor{
		Name:        MetricSocketsOpen,
		Description: "Sockets owned by subchannels of leakproof policies (counted when the channel dials through subconn.Dialer).",
		Unit:        "{socket}",
		Labels:      []string{labelTarget},
	})
	connectionsLostMetric = estats.RegisterInt64Count(estats.MetricDescriptor{
		Name:        MetricConnectionsLost,
		Description: "READY connections of leakproof subchannels that were lost, by cause (goaway, peer_closed, reset, client_closed, read_error, unknown).",
		Unit:        "{connection}",
		Labels:      []string{labelTarget, labelCause},
	})
	leaksMetric = estats.RegisterInt64Count(estats.MetricDescriptor{
		Name:        MetricLeaks,
		Description: "Leaks leakproof caught and cleaned up: references never released before Close (unreleased_holder), sockets force-closed after the drain timeout (drain_timeout), subchannels a guarded policy held after their address left the resolver state (orphan).",
		Unit:        "{leak}",
		Labels:      []string{labelTarget, labelLeakKind},
	})
)

// startMetrics registers the manager's gauges with the channel's recorder.
// Called once from NewManager.
func (m *Manager) startMetrics() {
	if m.cc == nil {
		return
	}
	m.recorder = m.cc.MetricsRecorder()
	if m.recorder == nil {
		return
	}
	m.stopMetrics = m.recorder.RegisterAsyncReporter(estats.AsyncMetricReporterFunc(m.reportGauges), subchannelsOpenMetric, socketsOpenMetric)
}

// reportGauges reads counters kept up to date under m.mu, without taking it:
// grpc may unregister the reporter while m.mu is held.
func (m *Manager) reportGauges(r estats.AsyncMetricsRecorder) error {
	subchannelsOpenMetric.Record(r, m.openSubchannels.Load(), m.target)
	socketsOpenMetric.Record(r, m.openSockets.Load(), m.target)
	return nil
}

// recordLoss counts a lost connection; cause is a Cause* reason. Call it
// without m.mu.
func (m *Manager) recordLoss(cause string) {
	if m.recorder != nil {
		connectionsLostMetric.Record(m.recorder, 1, m.target, causeOf(cause))
	}
}

// recordLeaks counts n leaks of kind. Call it without m.mu.
func (m *Manager) recordLeaks(kind string, n int) {
	if m.recorder != nil && n > 0 {
		leaksMetric.Record(m.recorder, int64(n), m.target, kind)
	}
}
