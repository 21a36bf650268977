package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/examples/internal/extest"
	"github.com/leakproof/leakproof/trace"
)

// The tests below check this example itself, not your client: leave them
// out when you copy client_test.go.

func TestRun(t *testing.T) {
	out, events := extest.Run(t, run)
	extest.WantLines(t, out,
		"call 0: OK", "call 1: OK", "call 2: OK",
		"client (leakproof_round_robin): 1 socket to the backend",
		"closed: 0 sockets to the backend",
	)
	if n := extest.CheckReleased(t, events); n != 1 {
		t.Errorf("%d subchannels created, want 1", n)
	}
	if n := extest.Count(events, trace.KindSocketOpen, ""); n != 1 {
		t.Errorf("%d sockets opened, want 1 (is subconn.Dialer installed?)", n)
	}
}

// TestWorkflow checks the workflow runs what it says, with flags the soak
// command defines.
func TestWorkflow(t *testing.T) {
	b, err := os.ReadFile("github-workflow.yml")
	if err != nil {
		t.Fatal(err)
	}
	wf := string(b)
	if strings.Contains(wf, "\t") {
		t.Error("the workflow has a tab: YAML indents with spaces")
	}
	for _, want := range []string{
		"run: go test -race ./...",
		"run: go run github.com/leakproof/leakproof/cmd/leakproof@latest soak --duration 60s --report soak.html",
		"if: always()",
		"uses: actions/upload-artifact@",
		"path: soak.html",
	} {
		if !strings.Contains(wf, want) {
			t.Errorf("the workflow has no %q", want)
		}
	}
	cmd, err := os.ReadFile("../../cmd/leakproof/soak.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range regexp.MustCompile(`soak( --[a-z-]+ \S+)+`).FindAllString(wf, -1) {
		for _, f := range regexp.MustCompile(`--([a-z-]+)`).FindAllStringSubmatch(flag, -1) {
			if !regexp.MustCompile(`fs\.\w+\("` + f[1] + `"`).Match(cmd) {
				t.Errorf("the workflow passes --%s, which leakproof soak does not define", f[1])
			}
		}
	}
}
