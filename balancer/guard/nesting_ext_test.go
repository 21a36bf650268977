package guard_test

import (
	"strings"
	"testing"

	"github.com/leakproof/leakproof/balancer/guard"
)

// wrapGuard returns js as the child of one more leakproof_guard level,
// listed after the given entries.
func wrapGuard(js string, before ...string) string {
	list := append(before, `{"`+guard.Name+`":`+js+`}`)
	return `{"childPolicy":[` + strings.Join(list, ",") + `]}`
}

// TestParseConfigNamesTheNestingDepth: the nesting error counts the levels
// (each level's parse needs the count to refuse early), it follows the
// policy grpc would choose past names nobody registered, and a level whose
// own config is malformed counts as one more.
func TestParseConfigNamesTheNestingDepth(t *testing.T) {
	deep := func(levels int, inner string, before ...string) string {
		js := inner
		for range levels - 1 {
			js = wrapGuard(js, before...)
		}
		return js
	}
	rr := `{"childPolicy":[{"round_robin":{}}]}`
	for _, tc := range []struct {
		name, js, want string
	}{
		{"5 levels", deep(5, rr), "nests " + guard.Name + " 5 levels deep"},
		{"6 levels", deep(6, rr), "nests " + guard.Name + " 6 levels deep"},
		{"behind an unregistered policy", deep(5, rr, `{"no_such_policy":{}}`), "nests " + guard.Name + " 5 levels deep"},
		{"a malformed innermost level", deep(4, `{"childPolicy":[{"`+guard.Name+`":[]}]}`), "nests " + guard.Name + " 5 levels deep"},
	} {
		err := parse(tc.js)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseConfig = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if err := parse(deep(4, rr, `{"no_such_policy":{}}`)); err != nil {
		t.Errorf("4 levels behind an unregistered policy: %v", err)
	}
}
