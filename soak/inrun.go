package soak

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/leakproof/leakproof/leaktest"
)

// The checks made during the run on the descriptor books (fdbooks.go), on
// every sample, so that a leak is caught while it happens and not only if
// it survives shutdown:
//
//   - backend connections explained: a backend holds at most the held
//     connections its phase allows (the frozen backend while it is frozen:
//     one per client socket still trying, plus a socket in flight; every
//     other backend, and the frozen one once thawed: none), and no backend
//     keeps more connections open than clients hold sockets to it;
//   - client explained: the descriptors no owner claims stay within a
//     constant of the first sample, and goroutines within a budget of the
//     live sockets and channels plus a constant;
//   - growth: each owner's descriptors, at their floor in each repeat of a
//     phase, must not climb from repeat to repeat (growth.go), and over a
//     long run no sampled series may climb.
//
// A condition must hold for inRunStreak samples in a row to fail, so that a
// socket caught between two readings is not a leak.
const (
	inRunStreak = 3
	// heldSlack and openSlack are the connections a backend may have beyond
	// its clients' sockets: accepts racing the reading.
	heldSlack = 1
	openSlack = 2
	// otherSlack is how many descriptors beyond the first sample may be
	// owned by nobody: a few connections accepted between two readings,
	// and the child processes of the exec and starve faults (a pidfd each,
	// /dev/null and pipes while one starts).
	otherSlack = 32
	// The goroutine budget: per socket of either side (grpc's reader and
	// writer, the server's keepalive), per live channel (resolver,
	// balancer, idleness), per load goroutine, and a constant.
	goroutinesPerSocket  = 3
	goroutinesPerChannel = 8
	goroutinesPerLoad    = 2
	goroutineSlack       = 48
)

// phaseRepeats is the rule for an owner's descriptors across the repeats of
// a phase: at least three repeats, and a floor that rises by three or more
// along the fitted line.
var phaseRepeats = growthRule{minPoints: 3, minRise: 3}

// inRun holds the state of the in-run checks. Its methods are called with
// r.mu held, from sample.
type inRun struct {
	// Set at the first sample.
	started    bool
	otherBase  int
	goroutine0 int
	groups0    map[string]int // goroutines per stack group (groupKey)

	// floors is the fewest descriptors of each owner in the current phase;
	// floorOf the phase it belongs to.
	floorOf *phaseRun
	floors  map[string]int
	// repeats are the floors of each owner in each repeat of each fault.
	repeats map[Fault]map[string][]point

	streak map[string]int // condition → consecutive samples it held

	backendFails []string
	clientFails  []string
	maxHeld      map[string]int // most held connections seen per backend
	maxOther     int
	maxExcess    int // most goroutines over the start plus the budget's variable part (negative: under)
	peak         Totals
}

// maxKept bounds the samples a run keeps for its report and its slopes, so
// that a long run's own memory stays flat (and its heap slope means
// something). The kept samples stay evenly spread over the whole run: when
// maxKept are kept, every other one is dropped and from then on only every
// stride-th sample is kept, the stride doubling each time. The latest sample
// is always kept as well (the faults read it), in the last place.
const maxKept = 1024

// sampleThinning is keepLocked's state.
type sampleThinning struct {
	n      int  // samples taken so far
	stride int  // keep every stride-th sample (0 means 1)
	tail   bool // the last kept sample is only the latest, not a stride one
	// spare are samples taken and dropped, whose maps the next samples
	// reuse: with the spares made at the start (preallocateSamples), the samples
	// never allocate a map that outlives them, and the run's heap judges
	// what the client holds, not the soak's records.
	spare []Sample
}

// preallocateSamples makes every sample the run will hold, for samples
// that name the backends names: the kept samples' slice, and maxKept+2
// spares (every kept sample and the one being taken) whose maps have held
// every name once, so that their storage exists before the first sample
// (a map made with a size hint may still allocate on its first insert).
func (r *runner) preallocateSamples(names []string, compare bool) {
	t := &r.sampling
	r.samples = make([]Sample, 0, maxKept+1)
	t.spare = make([]Sample, maxKept+2)
	filled := func() map[string]int {
		m := make(map[string]int, len(names))
		for _, n := range names {
			m[n] = 0
		}
		clear(m)
		return m
	}
	for i := range t.spare {
		s := &t.spare[i]
		s.Sockets, s.BackendFDs, s.BackendConns = filled(), filled(), filled()
		if compare {
			s.CompareSockets = filled()
		}
	}
}

// spareLocked returns a sample to fill, its maps empty (nil when no spare
// is left). Caller must hold r.mu.
func (r *runner) spareLocked() Sample {
	t := &r.sampling
	if len(t.spare) == 0 {
		return Sample{}
	}
	s := t.spare[len(t.spare)-1]
	t.spare[len(t.spare)-1] = Sample{}
	t.spare = t.spare[:len(t.spare)-1]
	return Sample{Sockets: s.Sockets, CompareSockets: s.CompareSockets, BackendFDs: s.BackendFDs, BackendConns: s.BackendConns, Held: s.Held}
}

// recycleLocked makes the maps of a dropped sample spare. Caller must hold
// r.mu.
func (r *runner) recycleLocked(s Sample) {
	for _, m := range []map[string]int{s.Sockets, s.CompareSockets, s.BackendFDs, s.BackendConns, s.Held} {
		clear(m)
	}
	r.sampling.spare = append(r.sampling.spare, s)
}

// keepLocked stores s. Caller must hold r.mu.
func (r *runner) keepLocked(s Sample) {
	t := &r.sampling
	if t.stride == 0 {
		t.stride = 1
	}
	if t.tail {
		r.recycleLocked(r.samples[len(r.samples)-1])
		r.samples = r.samples[:len(r.samples)-1]
		t.tail = false
	}
	if len(r.samples) >= maxKept {
		for i := 1; i < len(r.samples); i += 2 {
			r.recycleLocked(r.samples[i])
		}
		n := 0
		for i := 0; i < len(r.samples); i += 2 {
			r.samples[n] = r.samples[i]
			n++
		}
		clear(r.samples[n:])
		r.samples = r.samples[:n]
		t.stride *= 2
	}
	t.tail = t.n%t.stride != 0
	t.n++
	r.samples = append(r.samples, s)
}

func newInRun() *inRun {
	return &inRun{
		repeats: map[Fault]map[string][]point{},
		streak:  map[string]int{},
		maxHeld: map[string]int{},
	}
}

// failing counts the samples in a row that key has held and reports
// whether this one makes inRunStreak.
func (w *inRun) failing(key string, holds bool) bool {
	return w.failingFor(key, holds, inRunStreak)
}

// failingFor is failing with a streak of n samples.
func (w *inRun) failingFor(key string, holds bool, n int) bool {
	if !holds {
		delete(w.streak, key)
		return false
	}
	w.streak[key]++
	return w.streak[key] == n
}

// openStreak is how many samples in a row a backend may keep connections
// its clients have closed: as many as span the removal bound, and at least
// inRunStreak.
func (r *runner) openStreak() int {
	return max(inRunStreak, int(r.cfg.bound()/r.cfg.SampleInterval)+1)
}

func (w *inRun) listBackend(msg string) {
	if len(w.backendFails) < maxListed {
		w.backendFails = append(w.backendFails, msg)
	}
}

func (w *inRun) listClient(msg string) {
	if len(w.clientFails) < maxListed {
		w.clientFails = append(w.clientFails, msg)
	}
}

// allowedHeld is how many held connections backend name may have in
// phase p with clients sockets to it.
func allowedHeld(role string, p *phaseRun, clients int) int {
	if role == roleFrozen && p != nil && p.Fault == FaultFreeze {
		return clients + heldSlack
	}
	return 0
}

// observe runs the checks on one sample. Caller must hold r.mu.
func (r *runner) observe(s Sample, sc *socketCount, liveChannels int) {
	w := r.inRun
	if !w.started {
		w.started = true
		w.otherBase = s.OtherFDs
		w.goroutine0 = s.Goroutines
		w.maxExcess = math.MinInt
		w.groups0 = map[string]int{}
		for _, g := range leaktest.Goroutines() {
			w.groups0[groupKey(g)] += g.Count
		}
	}
	w.peak.Goroutines = max(w.peak.Goroutines, s.Goroutines)
	w.peak.FDs = max(w.peak.FDs, s.FDs)
	w.peak.Sockets = max(w.peak.Sockets, s.ClientFDs)
	w.peak.HeapInUse = max(w.peak.HeapInUse, s.HeapInUse)
	w.peak.Records = max(w.peak.Records, s.Records)
	where := fmt.Sprintf("at %.1fs", time.Duration(s.At).Seconds())
	if s.Phase != "" {
		where += " (" + string(s.Phase) + ")"
	}

	// Backends: held connections bounded by the phase, open ones by the
	// clients' sockets.
	for _, b := range r.info {
		name := b.Name
		clients := sc.total[name]
		held := s.Held[name]
		w.maxHeld[name] = max(w.maxHeld[name], held)
		if allowed := allowedHeld(b.Role, r.cur, clients); w.failing("held "+name, held > allowed) {
			msg := fmt.Sprintf("backend %s holds %d connection(s) %s, the phase allows %d (%d client socket(s) to it)", name, held, where, allowed, clients)
			w.listBackend(msg)
			r.logf("soak: LEAK (%s): %s", CheckBackendConns, msg)
		}
		// A backend notices a client's close when it reads the EOF: like
		// the client's own closed channels, it has the removal bound to.
		open := s.BackendConns[name]
		if w.failingFor("open "+name, open > clients+openSlack, r.openStreak()) && len(w.backendFails) < maxListed {
			msg := fmt.Sprintf("backend %s has %d connection(s) open %s, its clients %d socket(s)", name, open, where, clients)
			// A socket another process inherited keeps its connection
			// open after the client closed it: name the process.
			if stray, err := strayConnections(map[netip.AddrPort]string{r.addrOf(name): name}); err == nil && len(stray) > 0 {
				msg += fmt.Sprintf(", %d of them held by other processes (%s)", len(stray), strings.Join(stray[:min(len(stray), 2)], ", "))
			}
			w.listBackend(msg)
			r.logf("soak: LEAK (%s): %s", CheckBackendConns, msg)
		}
	}

	// Client: unowned descriptors within a constant, goroutines within the
	// budget of what is live.
	w.maxOther = max(w.maxOther, s.OtherFDs)
	if w.failing("other", s.OtherFDs > w.otherBase+otherSlack) {
		w.listClient(fmt.Sprintf("%d descriptor(s) owned by no client channel and no backend %s, %d at the start", s.OtherFDs, where, w.otherBase))
	}
	sockets := s.ClientFDs
	for _, n := range s.BackendConns {
		sockets += n
	}
	load := r.cfg.Workers + r.cfg.Streams
	variable := goroutinesPerSocket*sockets + goroutinesPerChannel*liveChannels + goroutinesPerLoad*load
	excess := s.Goroutines - w.goroutine0 - variable
	w.maxExcess = max(w.maxExcess, excess)
	if w.failing("goroutines", excess > goroutineSlack) {
		w.listClient(fmt.Sprintf("%d goroutines %s: %d more than %d at the start plus %d for %d socket(s), %d channel(s) and %d load goroutine(s)%s",
			s.Goroutines, where, excess, w.goroutine0, variable, sockets, liveChannels, load, w.grown()))
		r.logf("soak: LEAK (%s): goroutines over the budget %s%s", CheckClientBudget, where, w.grown())
	}

	// Floors of each owner in this phase.
	if r.cur != w.floorOf {
		w.closeRepeat(r)
		w.floorOf = r.cur
		w.floors = map[string]int{}
	}
	if r.cur != nil {
		for owner, n := range s.owners() {
			if cur, ok := w.floors[owner]; !ok || n < cur {
				w.floors[owner] = n
			}
		}
	}
}

// closeRepeat files the floors of the phase that just ended as one repeat
// of its fault, and logs a climb as soon as it shows. Caller must hold
// r.mu.
func (w *inRun) closeRepeat(r *runner) {
	p := w.floorOf
	if p == nil || len(w.floors) == 0 {
		return
	}
	byOwner := w.repeats[p.Fault]
	if byOwner == nil {
		byOwner = map[string][]point{}
		w.repeats[p.Fault] = byOwner
	}
	for owner, n := range w.floors {
		byOwner[owner] = append(byOwner[owner], point{time.Duration(p.Start), float64(n)})
		if s := phaseRepeats.judge(owner, "fds", byOwner[owner]); s.Climbing && r != nil {
			r.logf("soak: GROWTH: %s's descriptors climb across %d repeats of %s: %+.1f from the first to the last", owner, s.Points, p.Fault, s.Rise())
		}
	}
}

// owners returns the sample's descriptors by owner.
func (s Sample) owners() map[string]int {
	out := map[string]int{ownerClient: s.ClientFDs, ownerOther: s.OtherFDs}
	for name, n := range s.BackendFDs {
		out[backendOwner(name)] = n
	}
	return out
}

// phaseSlopes judges every owner's floors across the repeats of every
// fault. Caller must hold r.mu.
func (w *inRun) phaseSlopes() []Slope {
	w.closeRepeat(nil)
	w.floorOf = nil
	var out []Slope
	for _, f := range slices.Sorted(maps.Keys(w.repeats)) {
		byOwner := w.repeats[f]
		for _, owner := range slices.Sorted(maps.Keys(byOwner)) {
			out = append(out, phaseRepeats.judge(fmt.Sprintf("fds: %s in phase %s", owner, f), "fds", byOwner[owner]))
		}
	}
	return out
}

// backendCheck and clientCheck are the verdict's lines for the in-run
// checks. Caller must hold r.mu.
func (w *inRun) backendCheck() Check {
	c := Check{Name: CheckBackendConns, Pass: len(w.backendFails) == 0}
	if c.Pass {
		var held []string
		for _, name := range slices.Sorted(maps.Keys(w.maxHeld)) {
			if w.maxHeld[name] > 0 {
				held = append(held, fmt.Sprintf("%s:%d", name, w.maxHeld[name]))
			}
		}
		c.Detail = fmt.Sprintf("on every sample, no backend held more connections than its phase allows, nor kept more open than its clients; most held at once: %s", orDash(strings.Join(held, " ")))
		return c
	}
	c.Detail = strings.Join(w.backendFails, "; ")
	return c
}

func (w *inRun) clientCheck() Check {
	c := Check{Name: CheckClientBudget, Pass: len(w.clientFails) == 0}
	if c.Pass {
		c.Detail = fmt.Sprintf("on every sample, descriptors owned by nobody within %d of the start (most %d, %d at the start) and goroutines within the budget of live sockets and channels (the most over the variable part %+d, slack %d)",
			otherSlack, w.maxOther, w.otherBase, w.maxExcess, goroutineSlack)
		return c
	}
	c.Detail = strings.Join(w.clientFails, "; ")
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupKey identifies a group of goroutines across readings.
func groupKey(g leaktest.GoroutineGroup) string {
	return g.State + "\x00" + g.Top + "\x00" + g.CreatedBy + "\x00" + g.At
}

// maxGrown is how many grown goroutine groups evidence lists.
const maxGrown = 3

// grown names the goroutine groups that grew most since the first
// sample: who started the goroutines over the budget.
func (w *inRun) grown() string {
	type growth struct {
		g leaktest.GoroutineGroup
		n int
	}
	var gs []growth
	for _, g := range leaktest.Goroutines() {
		if n := g.Count - w.groups0[groupKey(g)]; n > 0 {
			gs = append(gs, growth{g, n})
		}
	}
	slices.SortStableFunc(gs, func(a, b growth) int { return b.n - a.n })
	var parts []string
	for i, x := range gs {
		if i == maxGrown {
			break
		}
		x.g.Count = x.n
		parts = append(parts, "+"+x.g.Headline())
	}
	if len(parts) == 0 {
		return ""
	}
	return "; grown since the start: " + strings.Join(parts, "; ")
}
