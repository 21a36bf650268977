package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/internal/testing/e2e"
)

// runbookCommands returns the `leakproof trace` command lines of the shell
// blocks of docs/runbook.md, in order.
func runbookCommands(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	inShell := false
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			inShell = true
		case strings.HasPrefix(line, "```"):
			inShell = false
		case inShell && strings.HasPrefix(line, "leakproof trace "):
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// The runbook's commands, run in its order against a TLS admin port of a
// process whose guarded child policy forgot a subchannel, find that
// subchannel, its holder and its history.
func TestRunbookCommandsFindTheLeak(t *testing.T) {
	c, bs, leaked, addr, p := leakOverTLS(t)
	vars := strings.NewReplacer(
		"$ADMIN", addr,
		"$CA", p.caFile,
		"$SERVER_NAME", "admin.internal",
		"$TARGET", c.Target,
		"$N", itoa(leaked.Subchannel),
	)
	// What each step must show of the leak, and how it exits.
	want := map[string]struct {
		code int
		out  []string
	}{
		"list":  {exitOK, []string{"#" + itoa(leaked.Subchannel), bs[1].Addr(), leaked.Holder}},
		"check": {exitProblem, []string{"orphan: subchannel #" + itoa(leaked.Subchannel) + " " + bs[1].Addr(), "holders [" + leaked.Holder + "]"}},
		"watch": {exitOK, []string{" create ", leaked.Holder}},
	}
	ran := map[string]bool{}
	for _, line := range runbookCommands(t) {
		args := strings.Fields(vars.Replace(line))[2:]
		w, ok := want[args[0]]
		if !ok {
			t.Fatalf("the runbook runs %q; this test knows what list, check and watch must show", line)
		}
		ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
		code, out, errOut := runTrace(t, ctx, "", args...)
		cancel()
		if code != w.code {
			t.Errorf("%s: exit %d, want %d:\n%s%s", line, code, w.code, out, errOut)
		}
		for _, s := range w.out {
			if !strings.Contains(out, s) {
				t.Errorf("%s: output lacks %q:\n%s", line, s, out)
			}
		}
		ran[args[0]] = true
	}
	for step := range want {
		if !ran[step] {
			t.Errorf("the runbook has no `leakproof trace %s` command", step)
		}
	}
}
