package subconn

import (
	"github.com/leakproof/leakproof/trace"
	estats "google.golang.org/grpc/experimental/stats"
)

// The manager's metrics, reported through the channel's grpc
// MetricsRecorder beside grpc's own grpc.subchannel.* metrics and, like
// those, off until enabled by name in the OpenTelemetry plugin's options.
// Each carries grpc.target and grpc's optional labels grpc.lb.backend_service
// and grpc.lb.locality (the manager's Placement). The gauges are up-down
// counters that every manager of a target adds to, so a channel whose
// managers have closed and destroyed every subchannel reads 0.
const (
	// MetricSubchannelsOpen is a gauge (an up-down counter): subchannels created and not yet
	// destroyed (held, or shut down with sockets still draining).
	MetricSubchannelsOpen = "leakproof.subchannel.open"
	// MetricSocketsOpen is a gauge (an up-down counter): sockets owned by subchannels, draining
	// ones included. Counted when the channel dials through Dialer.
	MetricSocketsOpen = "leakproof.subchannel.open_sockets"
	// MetricConnectionsLost is a counter: READY connections lost, labelled
	// leakproof.cause with a trace.Cause value.
	MetricConnectionsLost = "leakproof.subchannel.connections_lost"
	// MetricLeaks is a counter: leaks caught and cleaned up, labelled
	// leakproof.leak_kind: unreleased_holder (a reference Close had to drop),
	// drain_timeout (a socket force-closed after the drain timeout) or orphan
	// (a subchannel a guarded child policy forgot).
	MetricLeaks = "leakproof.subchannel.leaks"

	labelTarget            = "grpc.target"             // the channel target, as on grpc's metrics
	labelBackendService    = "grpc.lb.backend_service" // optional: the xDS cluster, as on grpc's subchannel metrics
	labelLocality          = "grpc.lb.locality"        // optional: the xDS locality, as on grpc's subchannel metrics
	labelCause             = "leakproof.cause"         // why a READY connection was lost (trace.Cause*)
	labelLeakKind          = "leakproof.leak_kind"     // what the manager had to force
	leakUnreleasedHolder   = "unreleased_holder"       // a reference Close had to drop
	leakDrainTimeoutSocket = "drain_timeout"           // a socket force-closed after Shutdown
)

// optionalLabels follow the labels on every metric, in grpc's order.
var optionalLabels = []string{labelBackendService, labelLocality}

var (
	subchannelsOpenMetric = estats.RegisterInt64UpDownCount(estats.MetricDescriptor{
		Name:           MetricSubchannelsOpen,
		Description:    "Number of subchannels of leakproof policies not yet destroyed: held, or shut down with sockets draining.",
		Unit:           "{subchannel}",
		Labels:         []string{labelTarget},
		OptionalLabels: optionalLabels,
	})
	socketsOpenMetric = estats.RegisterInt64UpDownCount(estats.MetricDescriptor{
		Name:           MetricSocketsOpen,
		Description:    "Number of sockets owned by subchannels of leakproof policies, draining ones included (needs subconn.Dialer).",
		Unit:           "{socket}",
		Labels:         []string{labelTarget},
		OptionalLabels: optionalLabels,
	})
	connectionsLostMetric = estats.RegisterInt64Count(estats.MetricDescriptor{
		Name:           MetricConnectionsLost,
		Description:    "Number of READY connections of leakproof subchannels lost, by cause: goaway, goaway_inferred, peer_closed, reset, client_closed, read_error or unknown.",
		Unit:           "{connection}",
		Labels:         []string{labelTarget, labelCause},
		OptionalLabels: optionalLabels,
	})
	leaksMetric = estats.RegisterInt64Count(estats.MetricDescriptor{
		Name:           MetricLeaks,
		Description:    "Number of leaks leakproof caught and cleaned up, by kind: unreleased_holder (a reference dropped at Close), drain_timeout (a socket force-closed after the drain timeout) or orphan (a subchannel a guarded policy still held after its address left the resolver state).",
		Unit:           "{leak}",
		Labels:         []string{labelTarget, labelLeakKind},
		OptionalLabels: optionalLabels,
	})
)

// startMetrics finds the channel's recorder. Called once from NewManager.
func (m *Manager) startMetrics() {
	m.labels.Store(&[]string{m.target, "", ""}) // one slice for every record: no allocation per call
	if m.cc == nil {
		return
	}
	m.recorder = m.cc.MetricsRecorder()
}

// recordOpen adds the changes of the open subchannels and sockets. Call it
// without m.mu, after the change (the order of two changes does not matter:
// the recorder sums them).
func (m *Manager) recordOpen(subchannels, sockets int64) {
	if m.recorder == nil {
		return
	}
	labels := *m.labels.Load()
	if subchannels != 0 {
		subchannelsOpenMetric.Record(m.recorder, subchannels, labels...)
	}
	if sockets != 0 {
		socketsOpenMetric.Record(m.recorder, sockets, labels...)
	}
}

// recordLoss counts a lost connection; cause is a Cause* reason. Call it
// without m.mu.
func (m *Manager) recordLoss(cause trace.Cause) {
	if m.recorder != nil {
		l := *m.labels.Load()
		connectionsLostMetric.Record(m.recorder, 1, m.target, string(cause), l[1], l[2])
	}
}

// recordLeaks counts n leaks of kind. Call it without m.mu.
func (m *Manager) recordLeaks(kind string, n int) {
	if m.recorder != nil && n > 0 {
		l := *m.labels.Load()
		leaksMetric.Record(m.recorder, int64(n), m.target, kind, l[1], l[2])
	}
}
