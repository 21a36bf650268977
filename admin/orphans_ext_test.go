package admin_test

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/leakproof/leakproof/balancer/guard"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/testing/leakzoo"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
)

// The guard's main counter, orphans, reaches the page, its JSON and the
// service: all three render the manager's Stats.
func TestOrphansReachThePageTheJSONAndTheService(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	cfg := `{"childPolicy":[{"` + leakzoo.ForgetRemoved + `":{}}],"orphans":"report","orphanTimeout":"50ms"}`
	c := e2e.Dial(t, e2e.ServiceConfig(guard.Name, cfg), e2e.AddrState(e2e.Addrs(bs)...), e2e.Options{})
	c.WaitServed(e2e.Addrs(bs)...)
	c.R.UpdateState(e2e.AddrState(bs[0].Addr())) // the leaky child forgets bs[1]
	c.Trace.WaitFor(t, "the orphan report", func(ev []trace.Event) bool {
		for _, e := range ev {
			if e.Kind == trace.KindOrphan {
				return true
			}
		}
		return false
	})

	srv := startHandler(t)
	_, _, body := get(t, srv, "/debug/leakproof/json?target="+c.Target)
	var v struct {
		Managers []struct {
			Orphans uint64 `json:"orphans"`
		} `json:"managers"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || len(v.Managers) != 1 || v.Managers[0].Orphans != 1 {
		t.Fatalf("JSON managers: %v %+v, want one with 1 orphan:\n%s", err, v, body)
	}
	_, _, body = get(t, srv, "/debug/leakproof/?target="+c.Target)
	// The columns: id, target, closed, created, destroyed, refs/unrefs, leaks, orphans.
	if !regexp.MustCompile(`<th>leaks</th><th>orphans</th>`).MatchString(body) ||
		!regexp.MustCompile(`<td class="n">2/0</td><td class="n">0</td><td class="n">1</td>`).MatchString(body) {
		t.Errorf("HTML page does not show 1 orphan:\n%s", body)
	}
	ac := startAdmin(t, nil)
	if got := list(t, ac, c.Target).GetManagers()[0].GetStats().GetOrphans(); got != 1 {
		t.Errorf("ListSubchannels: %d orphans, want 1", got)
	}
}
