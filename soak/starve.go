package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
)

// The resolver-starvation fault: DNS lookups fail when the system runs out
// of threads or descriptors, for long stretches, then recover. The soak
// runs it in a child process of its own (a re-execution of its binary, see
// childEnv) whose RLIMIT_NOFILE is lowered to a few dozen above what it
// uses, so that the pressure is real and cannot starve the main soak:
//
//   - a resolver whose lookups open a socket, as a DNS client does, and fail
//     with a transient error while the stretch lasts (or when the socket
//     cannot be opened: EMFILE), retrying with backoff on its own;
//   - while starving, ballast descriptors fill the limit but for a few;
//     channels created then must fail their RPCs with an error that says
//     what is wrong (the resolver's), not hang and not spin;
//   - when the stretch ends the ballast goes, and those same channels must
//     serve RPCs again within starveRecover.
//
// The child reports what it saw as JSON; the phase fails if the resolver
// looked up more than starveMaxLookups a second or the child burnt more
// than starveMaxCPU of a core while starving (a busy loop), if its
// descriptors grew from cycle to cycle, if an RPC failed with an unclear
// error, or if RPCs did not recover.
const (
	starveHeadroom   = 48 // RLIMIT_NOFILE above the child's descriptors at start
	starveFree       = 4  // descriptors left free while starving
	starveBackoff    = 50 * time.Millisecond
	starveMaxBackoff = 400 * time.Millisecond
	starveRPC        = 150 * time.Millisecond // an RPC's deadline while starving
	starveRecover    = 3 * time.Second
	starveMaxLookups = 20  // a second, per resolver
	starveMaxCPU     = 0.5 // of one core
	starveMinStretch = 250 * time.Millisecond
	starveChildSlack = 5 * time.Second // beyond its duration before the child is killed
)

// starveBusyEnv makes the child's resolver retry without backoff: the
// busy loop the fault must catch, for its test.
const starveBusyEnv = "LEAKPROOF_SOAK_STARVE_BUSY"

// errStarved is the lookup error of a starving stretch.
var errStarved = errors.New("temporary failure in name resolution (resolver starved)")

// starveReport is what the child saw.
type starveReport struct {
	Limit          uint64   `json:"limit"`
	Cycles         int      `json:"cycles"`
	Lookups        int64    `json:"lookups"`
	MaxLookupsPerS float64  `json:"max_lookups_per_s"` // per resolver
	MaxCPU         float64  `json:"max_cpu"`           // fraction of one core, worst starving stretch
	FDs            []int    `json:"fds"`               // after each cycle, its channels closed
	StarvedRPCs    int      `json:"starved_rpcs"`
	ClearErrors    int      `json:"clear_errors"`
	SampleError    string   `json:"sample_error,omitempty"`  // the first RPC error while starving
	UnclearError   string   `json:"unclear_error,omitempty"` // the last that did not say why
	Recovered      int      `json:"recovered"`
	SlowestRecover string   `json:"slowest_recover,omitempty"`
	Problems       []string `json:"problems,omitempty"`
}

// starveResolver resolves "starve:///svc" to the child's backends with
// lookups that can starve.
type starveResolver struct {
	addrs    []resolver.Address
	backoff  time.Duration // the first backoff; 0 in the busy-looping test double
	starving atomic.Bool
	lookups  atomic.Int64
}

func (b *starveResolver) Scheme() string { return "starve" }

func (b *starveResolver) Build(_ resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	r := &starveWatcher{b: b, cc: cc, now: make(chan struct{}, 1), done: make(chan struct{})}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// lookup opens (and closes) a socket, as a DNS query would, and fails while
// the resolver starves.
func (b *starveResolver) lookup() error {
	b.lookups.Add(1)
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("starve: lookup svc: %w", err)
	}
	c.Close()
	if b.starving.Load() {
		return fmt.Errorf("starve: lookup svc: %w", errStarved)
	}
	return nil
}

type starveWatcher struct {
	b    *starveResolver
	cc   resolver.ClientConn
	now  chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

// run looks up until it succeeds, backing off between failures as a DNS
// resolver does, then waits for ResolveNow.
func (r *starveWatcher) run() {
	defer r.wg.Done()
	backoff := r.b.backoff
	for {
		wait := time.Duration(-1) // until ResolveNow
		if err := r.b.lookup(); err != nil {
			r.cc.ReportError(err)
			wait = backoff
			backoff = min(2*backoff, starveMaxBackoff)
		} else {
			backoff = r.b.backoff
			_ = r.cc.UpdateState(resolver.State{Addresses: r.b.addrs})
		}
		if !r.wait(wait) {
			return
		}
	}
}

// wait waits for ResolveNow if backoff is negative, else for backoff to
// pass (a ResolveNow does not cut a backoff short). It reports false on
// Close.
func (r *starveWatcher) wait(backoff time.Duration) bool {
	if backoff < 0 {
		select {
		case <-r.done:
			return false
		case <-r.now:
			return true
		}
	}
	t := time.NewTimer(backoff)
	defer t.Stop()
	select {
	case <-r.done:
		return false
	case <-t.C:
		return true
	}
}

func (r *starveWatcher) ResolveNow(resolver.ResolveNowOptions) {
	select {
	case r.now <- struct{}{}:
	default:
	}
}

func (r *starveWatcher) Close() {
	close(r.done)
	r.wg.Wait()
}

// starveChild runs the starvation soak for d and writes its report to w.
func starveChild(d time.Duration, sc string, w io.Writer) int {
	rep := &starveReport{}
	problem := func(format string, args ...any) {
		rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
	}
	defer func() { _ = json.NewEncoder(w).Encode(rep) }()
	var backends []*testbackend.Backend
	defer func() {
		for _, b := range backends {
			b.Close()
		}
	}()
	res := &starveResolver{backoff: starveBackoff}
	if os.Getenv(starveBusyEnv) != "" {
		res.backoff = 0 // the test double of a resolver that retries at once
	}
	for range 2 {
		b, err := testbackend.Start()
		if err != nil {
			problem("starting a backend: %v", err)
			return 1
		}
		backends = append(backends, b)
		res.addrs = append(res.addrs, resolver.Address{Addr: b.Addr()})
	}
	limit := uint64(countFDs() + starveHeadroom)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		problem("lowering RLIMIT_NOFILE to %d: %v", limit, err)
		return 1
	}
	rep.Limit = limit

	stretch := max(d/4, starveMinStretch)
	end := time.Now().Add(d)
	for rep.Cycles == 0 || time.Now().Add(stretch*3/2).Before(end) {
		rep.Cycles++
		starveCycle(res, sc, stretch, rep, problem)
		rep.FDs = append(rep.FDs, countFDs())
	}
	rep.Lookups = res.lookups.Load()
	if rep.MaxLookupsPerS > starveMaxLookups || rep.MaxCPU > starveMaxCPU {
		problem("busy loop while starving: %.0f lookups a second (limit %d), %.0f%% of a core (limit %.0f%%)", rep.MaxLookupsPerS, starveMaxLookups, rep.MaxCPU*100, starveMaxCPU*100)
	}
	if n := len(rep.FDs); n > 1 && rep.FDs[n-1] > rep.FDs[0] {
		problem("descriptors grew from cycle to cycle: %v", rep.FDs)
	}
	if rep.StarvedRPCs > 0 && rep.ClearErrors < rep.StarvedRPCs {
		problem("%d of %d RPCs failed while starving without saying so (%s)", rep.StarvedRPCs-rep.ClearErrors, rep.StarvedRPCs, rep.UnclearError)
	}
	if len(rep.Problems) > 0 {
		return 1
	}
	return 0
}

// starveCycle starves the resolver for stretch under fd pressure with new
// channels failing their RPCs, then lets it recover and checks that the
// same channels serve again.
func starveCycle(res *starveResolver, sc string, stretch time.Duration, rep *starveReport, problem func(string, ...any)) {
	res.starving.Store(true)
	ballast := fillFDs(starveFree)
	lookups0 := res.lookups.Load()
	cpu0, t0 := cpuTime(), time.Now()
	var chans []*grpc.ClientConn
	for time.Since(t0) < stretch {
		cc, err := grpc.NewClient("starve:///svc",
			grpc.WithResolvers(res),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultServiceConfig(sc))
		if err != nil {
			problem("NewClient while starving: %v", err)
			break
		}
		chans = append(chans, cc)
		ctx, cancel := context.WithTimeout(context.Background(), starveRPC)
		_, err = echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "starved"})
		cancel()
		if err == nil {
			problem("an RPC succeeded while the resolver starved from the start")
			continue
		}
		rep.StarvedRPCs++
		if rep.SampleError == "" {
			rep.SampleError = err.Error()
		}
		msg := status.Convert(err).Message()
		if status.Code(err) == codes.Unavailable && (strings.Contains(msg, "resolver starved") || strings.Contains(msg, "too many open files")) {
			rep.ClearErrors++
		} else {
			rep.UnclearError = err.Error()
		}
		time.Sleep(starveRPC / 2)
	}
	el := time.Since(t0)
	// Each channel has a resolver of its own: the rate is per resolver.
	rep.MaxLookupsPerS = max(rep.MaxLookupsPerS, float64(res.lookups.Load()-lookups0)/el.Seconds()/float64(max(len(chans), 1)))
	rep.MaxCPU = max(rep.MaxCPU, (cpuTime()-cpu0).Seconds()/el.Seconds())

	// Recovery: the ballast goes and the lookups succeed.
	for _, f := range ballast {
		f.Close()
	}
	res.starving.Store(false)
	t1 := time.Now()
	for i, cc := range chans {
		ctx, cancel := context.WithTimeout(context.Background(), starveRecover)
		_, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "recovered"}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			problem("channel %d did not recover within %v of the resolver: %v", i, starveRecover, err)
			continue
		}
		rep.Recovered++
	}
	rep.SlowestRecover = time.Since(t1).Round(time.Millisecond).String()
	for _, cc := range chans {
		cc.Close()
	}
	time.Sleep(100 * time.Millisecond) // closed channels' sockets
}

// fillFDs opens /dev/null until the descriptor limit leaves free open, and
// returns the ballast.
func fillFDs(free int) []*os.File {
	var out []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		out = append(out, f)
	}
	for i := 0; i < free && len(out) > 0; i++ {
		out[len(out)-1].Close()
		out = out[:len(out)-1]
	}
	return out
}

// cpuTime is the user and system time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// starvation runs the child for the phase and files its report.
func (r *runner) starvation(pctx context.Context, p *phaseRun) error {
	d := time.Until(deadlineOf(pctx)) - 300*time.Millisecond
	d = max(d, 2*starveMinStretch)
	ctx, cancel := context.WithTimeout(r.loadCtx, d+starveChildSlack)
	defer cancel()
	rep, err := runStarveChild(ctx, d, serviceConfigEnv+"="+r.cfg.channelServiceConfig(), policyEnv+"="+r.cfg.Policy)
	if err != nil {
		return err
	}
	r.mu.Lock()
	p.starve = rep
	r.mu.Unlock()
	if len(rep.Problems) > 0 {
		return fmt.Errorf("starve: %s", strings.Join(rep.Problems, "; "))
	}
	return nil
}

// runStarveChild runs the starve child for d with extra environment until
// it exits or ctx ends, and returns its report.
func runStarveChild(ctx context.Context, d time.Duration, extraEnv ...string) (*starveReport, error) {
	exe, args, env, err := childCommand("starve", d)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starve: %w", err)
	}
	defer pr.Close()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(env, extraEnv...)
	cmd.ExtraFiles = []*os.File{pw} // reportFD
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	runErr := cmd.Start()
	pw.Close()
	var out []byte
	if runErr == nil {
		out, _ = io.ReadAll(pr)
		runErr = cmd.Wait()
	}
	rep := &starveReport{}
	if err := json.Unmarshal(out, rep); err != nil {
		return nil, fmt.Errorf("starve: the child soak reported nothing (%v; %v): %s", runErr, err, strings.TrimSpace(stderr.String()))
	}
	return rep, nil
}

func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now()
}
