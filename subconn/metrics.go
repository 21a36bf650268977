package subconn

import (
	estats "google.golang.org/grpc/experimental/stats"
)

// Metrics reported through the channel's grpc MetricsRecorder, so grpc's
// OpenTelemetry plugin exports them beside grpc's own grpc.subchannel.*
// metrics. Like those, they are off by default: enable them by name in the
// plugin's options (e.g. stats.NewMetrics(subconn.MetricSubchannelsOpen, ...)).
//
// The names follow grpc's and OpenTelemetry's conventions: one singular
// namespace (leakproof.subchannel, as grpc.subchannel), units in braces,
// counters without a _total suffix (Prometheus exporters add it). With
// OpenTelemetry's Prometheus exporter they read leakproof_subchannel_open,
// leakproof_subchannel_open_sockets,
// leakproof_subchannel_connections_lost_total and
// leakproof_subchannel_leaks_total.
//
// Every metric carries grpc.target, the channel target, with the same value
// as on grpc's metrics. A channel's gauges are reported until its manager
// has closed and destroyed every subchannel: a subchannel leaked past Close
// keeps them above zero.
const (
	// MetricSubchannelsOpen is a gauge: subchannels created and not yet
	// destroyed (held, or shut down with sockets still draining).
	MetricSubchannelsOpen = "leakproof.subchannel.open"
	// MetricSocketsOpen is a gauge: sockets owned by subchannels, draining
	// ones included. Counted when the channel dials through Dialer.
	MetricSocketsOpen = "leakproof.subchannel.open_sockets"
	// MetricConnectionsLost is a counter: READY connections lost, labelled
	// leakproof.cause with a Cause* value.
	MetricConnectionsLost = "leakproof.subchannel.connections_lost"
	// MetricLeaks is a counter: leaks caught and cleaned up, labelled
	// leakproof.leak_kind: unreleased_holder (a reference Close had to drop)
	// or drain_timeout (a socket force-closed after the drain timeout).
	MetricLeaks = "leakproof.subchannel.leaks"

	labelTarget            = "grpc.target"         // the channel target, as on grpc's metrics
	labelCause             = "leakproof.cause"     // why a READY connection was lost (Cause*)
	labelLeakKind          = "leakproof.leak_kind" // what the manager had to force
	leakUnreleasedHolder   = "unreleased_holder"   // a reference Close had to drop
	leakDrainTimeoutSocket = "drain_timeout"       // a socket force-closed after Shutdown
)

var (
	subchannelsOpenMetric = estats.RegisterInt64AsyncGauge(estats.MetricDescriptor{
		Name:        MetricSubchannelsOpen,
		Description: "Number of subchannels of leakproof policies not yet destroyed: held, or shut down with sockets draining.",
		Unit:        "{subchannel}",
		Labels:      []string{labelTarget},
	})
	socketsOpenMetric = estats.RegisterInt64AsyncGauge(estats.MetricDescriptor{
		Name:        MetricSocketsOpen,
		Description: "Number of sockets owned by subchannels of leakproof policies, draining ones included (needs subconn.Dialer).",
		Unit:        "{socket}",
		Labels:      []string{labelTarget},
	})
	connectionsLostMetric = estats.RegisterInt64Count(estats.MetricDescriptor{
		Name:        MetricConnectionsLost,
		Description: "Number of READY connections of leakproof subchannels lost, by cause: goaway, peer_closed, reset, client_closed, read_error or unknown.",
		Unit:        "{connection}",
		Labels:      []string{labelTarget, labelCause},
	})
	leaksMetric = estats.RegisterInt64Count(estats.MetricDescriptor{
		Name:        MetricLeaks,
		Description: "Number of leaks leakproof caught and cleaned up, by kind: unreleased_holder (a reference dropped at Close), drain_timeout (a socket force-closed after the drain timeout) or orphan (a subchannel a guarded policy still held after its address left the resolver state).",
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
func (m *Manager) recordLoss(cause Cause) {
	if m.recorder != nil {
		connectionsLostMetric.Record(m.recorder, 1, m.target, string(cause))
	}
}

// recordLeaks counts n leaks of kind. Call it without m.mu.
func (m *Manager) recordLeaks(kind string, n int) {
	if m.recorder != nil && n > 0 {
		leaksMetric.Record(m.recorder, int64(n), m.target, kind)
	}
}
