package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/admin"
	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/jsontime"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/trace"
)

// get fetches path from srv and returns the status, content type and body.
func get(t *testing.T, srv *httptest.Server, path string) (int, string, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func startHandler(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/debug/leakproof/", admin.Handler())
	srv := httptest.NewServer(mux) // on 127.0.0.1
	t.Cleanup(func() {
		srv.Client().CloseIdleConnections()
		srv.Close()
	})
	return srv
}

func TestHandlerServesTheLiveView(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(e2e.Addrs(bs)...), e2e.Options{})
	c.WaitServed(e2e.Addrs(bs)...)
	srv := startHandler(t)

	code, ctype, body := get(t, srv, "/debug/leakproof/?target="+c.Target)
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/html") {
		t.Fatalf("HTML page: %d %s", code, ctype)
	}
	for _, want := range []string{"<table", bs[0].Addr(), bs[1].Addr(), "READY", c.Target, `class="ok">clean`, "socket_open"} {
		if !strings.Contains(body, want) {
			t.Errorf("HTML page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("HTML page refers to external assets or scripts")
	}

	for _, path := range []string{"/debug/leakproof/json?target=" + c.Target, "/debug/leakproof/?format=json&target=" + c.Target} {
		code, ctype, body = get(t, srv, path)
		if code != http.StatusOK || ctype != "application/json" {
			t.Fatalf("%s: %d %s", path, code, ctype)
		}
		var v struct {
			Managers    []struct{ ID uint64 } `json:"managers"`
			Subchannels []trace.Subchannel    `json:"subchannels"`
			Events      []trace.Event         `json:"events"`
			Check       struct {
				Problems    []json.RawMessage `json:"problems"`
				Subchannels int               `json:"subchannels"`
			} `json:"check"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, body)
		}
		if len(v.Managers) != 1 || len(v.Subchannels) != 2 || v.Check.Subchannels != 2 || len(v.Check.Problems) != 0 || len(v.Events) == 0 {
			t.Fatalf("%s: %d managers, %d subchannels, check %+v, %d events", path, len(v.Managers), len(v.Subchannels), v.Check, len(v.Events))
		}
		for _, sc := range v.Subchannels {
			if sc.Target != c.Target || len(sc.Sockets) != 1 || sc.Refs != 1 {
				t.Errorf("%s: subchannel %+v", path, sc)
			}
		}
	}

	// The rings as a trace, readable by the trace reader and clean.
	code, ctype, body = get(t, srv, "/debug/leakproof/trace?events=-1&target="+c.Target)
	if code != http.StatusOK || ctype != "application/x-ndjson" {
		t.Fatalf("trace: %d %s", code, ctype)
	}
	ev, err := trace.Read(strings.NewReader(body))
	if err != nil {
		t.Fatalf("trace: %v\n%s", err, body)
	}
	if want := c.Trace.Events(); len(ev) != len(want) || ev[0].Kind != trace.KindManagerOpen {
		t.Fatalf("trace has %d events (first %v), the channel emitted %d", len(ev), ev[0], len(want))
	}
	if rep := trace.Check(ev); !rep.Clean() || rep.Live != 2 {
		t.Fatalf("trace of a healthy channel: %+v", rep)
	}
	if _, _, body = get(t, srv, "/debug/leakproof/json?events=3&target="+c.Target); strings.Count(body, `"seq"`) != 3 {
		t.Errorf("events=3 gave %d events", strings.Count(body, `"seq"`))
	}
}

func TestHandlerRejectsBadRequests(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	srv := startHandler(t)
	for _, tc := range []struct{ path, want string }{
		{"/debug/leakproof/?events=lots", "events="},
		{"/debug/leakproof/?events=-2", "events="},
		{"/debug/leakproof/?grace=-1s", "grace="},
		{"/debug/leakproof/?grace=0s", "grace="},
		{"/debug/leakproof/?grace=soon", "grace="},
		{"/debug/leakproof/?format=xml", "format="},
	} {
		code, _, body := get(t, srv, tc.path)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %q, want 400 naming %s", tc.path, code, body, tc.want)
		}
	}
	resp, err := srv.Client().Post(srv.URL+"/debug/leakproof/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}

func TestHandlerEscapesWhatItShows(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	srv := startHandler(t)
	// The target parameter is echoed on the page.
	_, _, body := get(t, srv, "/debug/leakproof/?target=%3Cscript%3Ealert(1)%3C/script%3E")
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatal("the page does not escape the target it shows")
	}
}

func TestHandlerShowsProblemsWithTheirEvidence(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	c := e2e.Dial(t, e2e.ServiceConfig(pickfirst.Name, `{"drainTimeout": "1h"}`), e2e.AddrState(bs[0].Addr()), e2e.Options{})
	c.WaitServed(bs[0].Addr())
	srv := startHandler(t)

	// A held stream keeps b0's socket open after its subchannel is shut down.
	holdCtx, endHold := context.WithCancel(context.Background())
	defer endHold()
	hold, err := c.Echo.Hold(holdCtx, &echov1.HoldRequest{Label: "drain"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Recv(); err != nil {
		t.Fatal(err)
	}
	c.R.UpdateState(e2e.AddrState(bs[1].Addr()))
	c.WaitServed(bs[1].Addr())
	c.Trace.WaitFor(t, "b0's shutdown", func(ev []trace.Event) bool {
		for _, e := range ev {
			if e.Kind == trace.KindShutdown {
				return true
			}
		}
		return false
	})

	_, _, body := get(t, srv, "/debug/leakproof/?grace=1ns&target="+c.Target)
	for _, want := range []string{`class="bad">1 problem(s)`, "sockets_open_after_shutdown", bs[0].Addr() + " shutdown 0-&gt;0", "still open: socket"} {
		if !strings.Contains(body, want) {
			t.Errorf("HTML page lacks %q", want)
		}
	}
	_, _, body = get(t, srv, "/debug/leakproof/json?grace=1ns&target="+c.Target)
	var v struct {
		Check struct {
			Problems []struct {
				Kind          string            `json:"kind"`
				Key           string            `json:"key"`
				SinceShutdown jsontime.Duration `json:"since_shutdown"`
				Events        []trace.Event     `json:"events"`
			} `json:"problems"`
		} `json:"check"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if ps := v.Check.Problems; len(ps) != 1 || ps[0].Kind != "sockets_open_after_shutdown" || ps[0].Key != bs[0].Addr() || ps[0].SinceShutdown <= 0 || len(ps[0].Events) == 0 {
		t.Fatalf("JSON check: %+v", v.Check)
	}
	// Within the default grace period: draining, not a problem.
	if _, _, body = get(t, srv, "/debug/leakproof/?target="+c.Target); !strings.Contains(body, `class="ok">clean`) || !strings.Contains(body, "1 draining") {
		t.Error("HTML page with the default grace period: want clean with 1 draining")
	}
}
