package policy_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/leakproof/leakproof/internal/policy"
)

func TestLogCloseLogsOnlyAnError(t *testing.T) {
	var lines []string
	logf := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	policy.LogClose(logf, nil, "%s", "leakproof_round_robin")
	if len(lines) != 0 {
		t.Fatalf("a clean close logged %q", lines)
	}
	policy.LogClose(logf, errors.New("released 2 subchannels still held"), "%s: child policy %s", "leakproof_guard", "round_robin")
	if want := "leakproof_guard: child policy round_robin: released 2 subchannels still held"; len(lines) != 1 || lines[0] != want {
		t.Fatalf("logged %q, want [%q]", lines, want)
	}
}
