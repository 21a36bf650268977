package soak

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/leakproof/leakproof/jsontime"
	"github.com/leakproof/leakproof/trace"
)

// A Result is what a soak saw and its verdict. It marshals to JSON (without
// the samples) as the machine-readable summary.
type Result struct {
	// What ran.
	Policy   string            `json:"policy"`
	Compare  string            `json:"compare,omitempty"`
	Duration jsontime.Duration `json:"duration"` // the timeline as configured
	Elapsed  jsontime.Duration `json:"elapsed"`  // from Run's start to the end of the final checks
	Started  time.Time         `json:"started"`
	Backends []BackendInfo     `json:"backends"`
	Faults   []Fault           `json:"faults"`

	// XDS is set when the channels ran under an xDS control plane
	// (ResolverXDS).
	XDS bool `json:"xds,omitempty"`
	// XDSWeightedLocalities is set when the control plane weighted two
	// localities through WrrLocality (Config.XDSWeightedLocalities).
	XDSWeightedLocalities bool `json:"xds_weighted_localities,omitempty"`
	// Resolver is how the channels under test learned their backends.
	Resolver Resolver `json:"resolver"`
	// ServiceConfig is Config.ServiceConfig, if set; Policy is then the
	// policy it selected.
	ServiceConfig string `json:"service_config,omitempty"`
	// TLS is set when every backend served TLS (Config.TLS).
	TLS bool `json:"tls,omitempty"`
	// Target is the target the channels under test dialed (the main
	// channel's; empty if it was never dialed).
	Target string `json:"target,omitempty"`
	// DNS describes the DNS side of a run under ResolverDNS.
	DNS *DNSReport `json:"dns,omitempty"`

	// Limits the verdict applied.
	SocketLimit    int               `json:"socket_limit"` // <= 0: not checked
	MaxFailureRate float64           `json:"max_failure_rate"`
	RemovalBound   jsontime.Duration `json:"removal_bound"`

	// Phases are the faults as they ran, in order.
	Phases []Phase `json:"phases"`

	// RPCs counts the RPCs of the channels under test (the main channel and
	// the churned channels); CompareRPCs those of the comparison channel.
	RPCs        RPCStats  `json:"rpcs"`
	CompareRPCs *RPCStats `json:"compare_rpcs,omitempty"`
	// Failures holds the first RPC failures, as logged.
	Failures []string `json:"failures,omitempty"`

	// Removals are the backends the resolver removed from the main channel
	// and what became of their sockets; CompareRemovals the same for the
	// comparison channel.
	Removals        Removals  `json:"removals"`
	CompareRemovals *Removals `json:"compare_removals,omitempty"`

	// Trace is the check of the whole refcount trace of the run's channels.
	Trace trace.Report `json:"trace"`

	// Slopes are the least-squares trends of the sampled series after
	// warm-up (goroutines, descriptors and each owner's share, heap, live
	// manager records), and of each owner's descriptors across the repeats
	// of each phase. A climbing one fails CheckGrowth.
	Slopes []Slope `json:"slopes"`
	// WarmUp is the start of the run left out of the run-level slopes.
	WarmUp jsontime.Duration `json:"warm_up"`
	// Peak and Final are the highest readings over the run and the last
	// one, after everything was closed.
	Peak  Totals `json:"peak"`
	Final Totals `json:"final"`
	// Subchannels counts the subchannels of the run's channels, from the
	// refcount trace.
	Subchannels SubchannelTotals `json:"subchannels"`

	// Checks is the verdict, one entry per check.
	Checks []Check `json:"checks"`
	// Pass is true when every check that counts passed.
	Pass bool `json:"pass"`

	// Samples are the periodic readings, oldest first.
	Samples []Sample `json:"-"`
}

// Totals are readings of the whole process.
type Totals struct {
	Goroutines int    `json:"goroutines"`
	FDs        int    `json:"fds"`
	Sockets    int    `json:"sockets"` // of the channels under test (the client's descriptors)
	HeapInUse  uint64 `json:"heap_inuse"`
	Records    int    `json:"records"`
}

// SubchannelTotals count subchannels over a run.
type SubchannelTotals struct {
	Created   int `json:"created"`
	Destroyed int `json:"destroyed"`
}

// A BackendInfo describes one backend the soak started.
type BackendInfo struct {
	Name     string `json:"name"`
	Addr     string `json:"addr"`
	Role     string `json:"role"`     // "regular", "frozen", "resetting" or "tls"
	Accepted int64  `json:"accepted"` // connections accepted over the run
	RPCs     int64  `json:"rpcs"`     // EchoService calls served
}

// A Phase is one fault as it ran.
type Phase struct {
	Fault Fault             `json:"fault"`
	Start jsontime.Duration `json:"start"` // offset from the start of the run
	End   jsontime.Duration `json:"end"`
	// MaxSockets is the most sockets the main channel held to each backend
	// in any sample of the phase; CompareMaxSockets the same for the
	// comparison channel.
	MaxSockets        map[string]int `json:"max_sockets"`
	CompareMaxSockets map[string]int `json:"compare_max_sockets,omitempty"`
	// Evidence says what the fault did (GOAWAYs seen, connections reset,
	// handshakes failed, channels churned).
	Evidence string `json:"evidence"`
	// Error is set if the fault could not be injected.
	Error string `json:"error,omitempty"`
	// Skipped says why the fault did not run under this resolver (DNS
	// cannot express endpoints with several addresses); the phase ran on
	// the base list.
	Skipped string `json:"skipped,omitempty"`
}

// RPCStats counts RPCs. An RPC fails only after its retries.
type RPCStats struct {
	OK      int64 `json:"ok"`
	Failed  int64 `json:"failed"`
	Retries int64 `json:"retries"`
	Streams int64 `json:"streams"` // of OK+Failed, how many were streams
	// FailedByCode counts the failed RPCs by their final status code
	// ("Unavailable", "DeadlineExceeded", …; "Unknown" for an error that
	// carries no status).
	FailedByCode map[string]int64 `json:"failed_by_code,omitempty"`
}

// FailureRate returns Failed/(OK+Failed), 0 with no RPC.
func (s RPCStats) FailureRate() float64 {
	if s.OK+s.Failed == 0 {
		return 0
	}
	return float64(s.Failed) / float64(s.OK+s.Failed)
}

// Removal outcomes.
const (
	RemovalReleased = "released" // sockets reached 0 and stayed there while the backend was removed
	RemovalReadded  = "re-added" // the backend came back before its sockets reached 0
	RemovalLeaked   = "leaked"   // a socket open after the bound while the backend was removed and the channel open
	RemovalOpen     = "open"     // the run ended before the sockets reached 0 (and within the bound)
	// RemovalUnasked: under ResolverDNS, the channel never got a DNS answer
	// without the backend while it was removed (grpc's dns resolver asks
	// only when a policy or a lost connection asks it to), and its sockets
	// stayed open until it came back or the run ended. Not a leak of the
	// policy: the client never learned. The cures are reresolveInterval
	// (leakproof's policies) or the servers' MaxConnectionAge.
	RemovalUnasked = "unasked"
)

// Removals sums up what became of the backends removed from one channel.
type Removals struct {
	Released int `json:"released"`
	Readded  int `json:"readded"`
	Leaked   int `json:"leaked"`
	Open     int `json:"open"`
	Unasked  int `json:"unasked,omitempty"`
	// SlowestRelease is the longest time a released backend's sockets took
	// to reach 0.
	SlowestRelease jsontime.Duration `json:"slowest_release"`
	// List holds every leaked removal and the first others, in the order
	// they were concluded.
	List []Removal `json:"list"`
}

// maxRemovalsKept bounds the removals listed other than leaked ones, so that
// a long run's result stays small.
const maxRemovalsKept = 100

func (rs *Removals) add(rm Removal) {
	switch rm.Outcome {
	case RemovalReleased:
		rs.Released++
		rs.SlowestRelease = max(rs.SlowestRelease, rm.After)
	case RemovalReadded:
		rs.Readded++
	case RemovalLeaked:
		rs.Leaked++
	case RemovalOpen:
		rs.Open++
	case RemovalUnasked:
		rs.Unasked++
	}
	if rm.Outcome == RemovalLeaked || len(rs.List)-rs.Leaked < maxRemovalsKept {
		rs.List = append(rs.List, rm)
	}
}

func (rs *Removals) clone() Removals {
	out := *rs
	out.List = slices.Clone(rs.List)
	return out
}

// A Removal is a backend a resolver update removed from a channel's list.
type Removal struct {
	Backend   string            `json:"backend"`
	Addr      string            `json:"addr"`
	Fault     Fault             `json:"fault,omitempty"` // the phase that removed it ("" for the timeline's own restore)
	RemovedAt jsontime.Duration `json:"removed_at"`
	// AnsweredAt is, under ResolverDNS, when the channel first got a DNS
	// answer that no longer listed the backend (offset from the start of
	// the run; 0 if it never did). The bound counts from then.
	AnsweredAt jsontime.Duration `json:"answered_at,omitempty"`
	Outcome    string            `json:"outcome"`
	// After is how long after removal the sockets reached 0 (released), the
	// backend came back (re-added), the leak was declared (leaked) or the
	// run ended (open, unasked).
	After jsontime.Duration `json:"after"`
	// Sockets and Evidence describe the sockets still open when the leak was
	// declared.
	Sockets  int    `json:"sockets,omitempty"`
	Evidence string `json:"evidence,omitempty"`
}

// A Check is one line of the verdict.
type Check struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Info   bool   `json:"info,omitempty"` // reported only, not part of the verdict
	Detail string `json:"detail"`
}

// A Sample is one periodic reading.
type Sample struct {
	At         jsontime.Duration `json:"at"`
	Phase      Fault             `json:"phase,omitempty"`
	Goroutines int               `json:"goroutines"`
	FDs        int               `json:"fds"`
	// Sockets is the number of sockets the main channel holds to each
	// backend, by name, read from /proc; CompareSockets the same for the
	// comparison channel; OtherSockets the sockets of the process to the
	// backends that neither holds (churned and TLS channels).
	Sockets        map[string]int `json:"sockets"`
	CompareSockets map[string]int `json:"compare_sockets,omitempty"`
	OtherSockets   int            `json:"other_sockets"`
	// Subchannels and Refs are the live (not shut down) subchannels and
	// the references held on them, over the leakproof managers of the run;
	// Records every subchannel record the managers keep (shut-down ones
	// still draining included).
	Subchannels int `json:"subchannels"`
	Refs        int `json:"refs"`
	Records     int `json:"records"`
	// The descriptor books: FDs split by owner. ClientFDs are the sockets
	// of the run's channels (booked by their dialers); BackendFDs each
	// backend's sockets (listener and connections, held ones included;
	// booked by its tracker), of which BackendConns are connections and
	// Held connections held without HTTP/2 (frozen); OtherFDs everything
	// else (files, pipes, the runtime's poller, the trace writer, and any
	// socket nobody booked).
	ClientFDs    int            `json:"client_fds"`
	BackendFDs   map[string]int `json:"backend_fds"`
	BackendConns map[string]int `json:"backend_conns"`
	Held         map[string]int `json:"held,omitempty"`
	OtherFDs     int            `json:"other_fds"`
	// HeapInUse is the Go heap in use (runtime HeapInuse); HeapLive the
	// heap the last GC found live, which a leak grows without GC noise.
	HeapInUse uint64 `json:"heap_inuse"`
	HeapLive  uint64 `json:"heap_live"`
	// RPCs so far on the channels under test.
	RPCsOK     int64 `json:"rpcs_ok"`
	RPCsFailed int64 `json:"rpcs_failed"`
}

// Verdict returns one line saying whether the soak passed, followed by a
// line per failed check.
func (r *Result) Verdict() string {
	var b strings.Builder
	if r.Pass {
		fmt.Fprintf(&b, "soak passed: %s, %d backends, %v, %d fault(s): no leak", r.Policy, r.regular(), time.Duration(r.Duration), len(r.Faults))
		return b.String()
	}
	fmt.Fprintf(&b, "soak FAILED: %s%s, %d backends, %v, %d fault(s):", r.Policy, r.underXDS(), r.regular(), time.Duration(r.Duration), len(r.Faults))
	for _, c := range r.Checks {
		if !c.Pass && !c.Info {
			fmt.Fprintf(&b, "\n  %s: %s", c.Name, c.Detail)
		}
	}
	return b.String()
}

func (r *Result) regular() int {
	n := 0
	for _, b := range r.Backends {
		if b.Role == roleRegular {
			n++
		}
	}
	return n
}

// WriteText writes the verdict as a table, followed by each phase's
// maximum sockets per backend.
func (r *Result) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	status := "PASS"
	if !r.Pass {
		status = "FAIL"
	}
	fmt.Fprintf(tw, "leakproof soak: %s\t%s%s, %d backends, %v timeline, %d fault(s)\n", status, r.Policy, r.underXDS(), r.regular(), time.Duration(r.Duration), len(r.Faults))
	fmt.Fprintf(tw, "\n  check\tresult\tdetail\n")
	for _, c := range r.Checks {
		res := "pass"
		switch {
		case c.Info && c.Pass:
			res = "info"
		case c.Info:
			res = "info (fails)"
		case !c.Pass:
			res = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Name, res, oneLine(c.Detail, 200))
	}
	head := "  fault\twindow\tmax sockets per backend (" + r.Policy + ")"
	if r.Compare != "" {
		head += "\t" + r.Compare
	}
	fmt.Fprintf(tw, "\n  peak\tgoroutines %d, fds %d, client sockets %d, heap in use %.1f MiB, manager records %d\n", r.Peak.Goroutines, r.Peak.FDs, r.Peak.Sockets, float64(r.Peak.HeapInUse)/mib, r.Peak.Records)
	fmt.Fprintf(tw, "  final\tgoroutines %d, fds %d, client sockets %d, heap in use %.1f MiB, manager records %d\n", r.Final.Goroutines, r.Final.FDs, r.Final.Sockets, float64(r.Final.HeapInUse)/mib, r.Final.Records)
	fmt.Fprintf(tw, "  subchannels\t%d created, %d destroyed\n", r.Subchannels.Created, r.Subchannels.Destroyed)
	fmt.Fprintf(tw, "\n  slope after %v warm-up\tper minute\tspan\tverdict\n", time.Duration(r.WarmUp).Round(time.Second))
	for _, sl := range r.Slopes {
		if strings.Contains(sl.Series, " in phase ") && !sl.Climbing {
			continue // the per-phase series are in the JSON and the HTML report
		}
		v := "not judged"
		switch {
		case sl.Climbing:
			v = "CLIMBING"
		case sl.Judged:
			v = "flat"
		}
		fmt.Fprintf(tw, "  %s\t%+.3g %s\t%v\t%s\n", sl.Series, sl.PerMinute, sl.Unit, time.Duration(sl.Span).Round(time.Second), v)
	}
	fmt.Fprintf(tw, "\n%s\tevidence\n", head)
	for _, p := range r.Phases {
		line := fmt.Sprintf("  %s\t%s\t%s", p.Fault, window(p.Start, p.End), formatCounts(p.MaxSockets, r.backendOrder()))
		if r.Compare != "" {
			line += "\t" + formatCounts(p.CompareMaxSockets, r.backendOrder())
		}
		ev := p.Evidence
		if p.Error != "" {
			ev = "ERROR: " + p.Error
		}
		fmt.Fprintf(tw, "%s\t%s\n", line, oneLine(ev, 120))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.DNS != nil {
		return r.writeDNS(w)
	}
	return nil
}

// writeDNS writes the DNS side of a run under ResolverDNS: the resolution
// interval the run set, each channel's queries, and per removal when DNS
// stopped listing the backend, when the channel first got an answer without
// it and when its sockets closed.
func (r *Result) writeDNS(w io.Writer) error {
	d := r.DNS
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nresolver dns: DNS server %s, backends on port %d, grpc's dns resolver; grpc's minimum resolution interval lowered to %v for this process (resolver/dns.SetMinResolutionInterval; grpc's default is 30s)\n",
		d.Server, d.Port, time.Duration(d.MinResolutionInterval))
	for f, why := range d.Skipped {
		fmt.Fprintf(tw, "  %s skipped: %s\n", f, why)
	}
	queries := func(name string, q DNSQueries) {
		fmt.Fprintf(tw, "  %s\t%s: %d queries (%.1f a minute), %d A answers with a list\n", name, q.Name, q.Queries, q.PerMinute, q.Answered)
	}
	queries(r.Policy, d.Main)
	if d.Compare != nil {
		queries(r.Compare, *d.Compare)
	}
	fmt.Fprintf(tw, "\n  removal\tchannel\tremoved from DNS at\tfirst answer without it\tsockets closed at\toutcome\n")
	rows := func(policy string, rs *Removals) {
		if rs == nil {
			return
		}
		for _, rm := range rs.List {
			answered, closed := "never", "-"
			if rm.AnsweredAt > 0 {
				answered = fmt.Sprintf("%.2fs", time.Duration(rm.AnsweredAt).Seconds())
			}
			if rm.Outcome == RemovalReleased {
				closed = fmt.Sprintf("%.2fs", time.Duration(rm.RemovedAt+rm.After).Seconds())
			}
			fmt.Fprintf(tw, "  %s (%s)\t%s\t%.2fs\t%s\t%s\t%s\n", rm.Backend, rm.Addr, policy, time.Duration(rm.RemovedAt).Seconds(), answered, closed, rm.Outcome)
		}
	}
	rows(r.Policy, &r.Removals)
	rows(r.Compare, r.CompareRemovals)
	return tw.Flush()
}

func window(a, b jsontime.Duration) string {
	return fmt.Sprintf("%.1fs–%.1fs", time.Duration(a).Seconds(), time.Duration(b).Seconds())
}

// backendOrder returns the backend names in start order.
func (r *Result) backendOrder() []string {
	names := make([]string, len(r.Backends))
	for i, b := range r.Backends {
		names[i] = b.Name
	}
	return names
}

// formatCounts renders counts as "b0:1 b1:2", in order, skipping backends
// with none.
func formatCounts(m map[string]int, order []string) string {
	var parts []string
	for _, name := range order {
		if n := m[name]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", name, n))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(order, name) && m[name] > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", name, m[name]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func oneLine(s string, max int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > max {
		s = s[:max-1] + "…"
	}
	return s
}

// DNSReport is the DNS side of a run under ResolverDNS.
type DNSReport struct {
	// Server is the run's DNS server, 127.0.0.1:port (UDP and TCP); the
	// backends listen on Port at 127.0.0.2, 127.0.0.3, …
	Server string `json:"server"`
	Port   int    `json:"port"`
	// MinResolutionInterval is grpc's dns resolver's minimum interval
	// between resolutions as the run set it for the process
	// (DNSMinResolutionInterval; grpc's default is 30 s).
	MinResolutionInterval jsontime.Duration `json:"min_resolution_interval"`
	// Skipped are the faults DNS cannot express, with the reason; their
	// phases ran on the base list.
	Skipped map[Fault]string `json:"skipped,omitempty"`
	// Main and Compare are the queries of each channel under test.
	Main    DNSQueries  `json:"main"`
	Compare *DNSQueries `json:"compare,omitempty"`
}

// DNSQueries counts one channel's queries to its DNS server.
type DNSQueries struct {
	Name      string  `json:"name"`       // the name the channel resolved
	Queries   int     `json:"queries"`    // every query for it, all types (A, AAAA, _grpc_config TXT), UDP and TCP
	Answered  int     `json:"answered"`   // A queries answered with a list (Query.Answered)
	PerMinute float64 `json:"per_minute"` // Queries per minute of the run
}
