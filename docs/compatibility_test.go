package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCompatibilityStatesTheTestedRange keeps compatibility.md's range in
// step with what CI tests: the minimum is the grpc-go version go.mod
// requires (the one most of .ci/run runs on), the newest is GRPC_NEWEST in
// .ci/run (scripts/compat.sh runs the suite on it), and the Go version is
// go.mod's go line. Under scripts/compat.sh, which moves go.mod to another
// release, the minimum comes from LEAKPROOF_COMPAT_MINIMUM.
func TestCompatibilityStatesTheTestedRange(t *testing.T) {
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	find := func(what, text, re string) string {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("%s: no match for %s", what, re)
		}
		return m[1]
	}
	gomod, ci, doc := read("go.mod"), read(".ci/run"), read("docs/compatibility.md")
	minimum := find("go.mod", gomod, `(?m)^\s+google\.golang\.org/grpc (v\S+)$`)
	if v := os.Getenv("LEAKPROOF_COMPAT_MINIMUM"); v != "" {
		// scripts/compat.sh: this copy's go.mod was moved to another
		// release; the minimum is what the original go.mod requires.
		minimum = v
	}
	goVersion := find("go.mod", gomod, `(?m)^go (\S+)$`)
	newest := find(".ci/run", ci, `(?m)^GRPC_NEWEST=(v\S+)$`)

	for _, want := range []string{
		"| grpc-go | " + minimum + " to " + newest + " |",
		"| Go | " + strings.Join(strings.Split(goVersion, ".")[:2], ".") + " and later (`go.mod`: `go " + goVersion + "`) |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("compatibility.md's table lacks the row starting %q (go.mod requires grpc-go %s and go %s; .ci/run's GRPC_NEWEST is %s)", want, minimum, goVersion, newest)
		}
	}
}
