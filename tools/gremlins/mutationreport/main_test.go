package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const src = `package p

type keyMap[V any] struct{}

func (m *keyMap[V]) remove(k int, f func(int) bool) {}

type M struct{}

func (m *M) acquire(r, x int) {
	var km keyMap[int]
	km.remove(1, func(x int) bool { return x == r })
	if x == r && r == 2 {
	}
}

func Free(a, b int) bool { return a < b }
`

// results puts src in dir/p.go under root and gremlins results for it.
func setup(t *testing.T, results string) (root string) {
	t.Helper()
	root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "p", "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "res.json"), []byte(results), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	return root
}

// Line 11 holds "x == r" at column 43, line 12 holds "x == r" at 7 and
// "r == 2" at 17.
const resultsJSON = `{"files":[{"file_name":"p.go","mutations":[
 {"type":"CONDITIONALS_NEGATION","status":"LIVED","line":11,"column":43},
 {"type":"CONDITIONALS_NEGATION","status":"LIVED","line":12,"column":7},
 {"type":"CONDITIONALS_NEGATION","status":"KILLED","line":12,"column":17},
 {"type":"CONDITIONALS_BOUNDARY","status":"NOT COVERED","line":16,"column":37},
 {"type":"CONDITIONALS_NEGATION","status":"TIMED OUT","line":16,"column":37}]}]}`

func TestAllowlistMatchesFunctionMutatorAndTheSnippetUnderTheColumn(t *testing.T) {
	setup(t, resultsJSON)
	allow := "# comment\n\np | (*M).acquire | CONDITIONALS_NEGATION | return x == r | the closure's x is the record itself\n" +
		"p | (*M).acquire | CONDITIONALS_NEGATION | r == 2 | the second comparison only\n" +
		"p | (*M).acquire | CONDITIONALS_BOUNDARY | x == r | stale: no such mutant\n"
	if err := os.WriteFile("allow.txt", []byte(allow), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	code := run([]string{"-allow", "allow.txt", "-min", "p=0/50", "p=res.json"}, &out, &errOut)
	got := out.String()
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, got, errOut.String())
	}
	// Line 11 is allowlisted; line 12's first comparison is not: the
	// entry's snippet "return x == r" is not on its line, and "r == 2" is,
	// but not under its column.
	for _, want := range []string{
		"== p: efficacy 0.0% (killed 0, lived 1), mutator coverage 50.0% (not covered 1); timed out 1, not viable 0; allowlisted 2",
		"p/p.go:12:7 CONDITIONALS_NEGATION in (*M).acquire: if x == r && r == 2 {",
		"allowlist as: p | (*M).acquire | CONDITIONALS_NEGATION | if x == r && r == 2 { | WHY IT IS EQUIVALENT",
		"p/p.go:11:43 CONDITIONALS_NEGATION in (*M).acquire [LIVED]: the closure's x is the record itself",
		"p/p.go:12:17 CONDITIONALS_NEGATION in (*M).acquire [KILLED]: the second comparison only",
		"stale allowlist entry allow.txt:5",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "p/p.go:11:43 CONDITIONALS_NEGATION in (*M).acquire: ") {
		t.Errorf("the allowlisted mutant is listed as lived:\n%s", got)
	}
}

func TestThresholdsAndNoLivedFail(t *testing.T) {
	setup(t, resultsJSON)
	var out, errOut strings.Builder
	if code := run([]string{"-min", "p=95/90", "p=res.json"}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "FAIL: p wants efficacy >= 95.0%") {
		t.Errorf("below thresholds: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-no-lived", "p=res.json"}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "FAIL: 2 mutant(s) lived in p") {
		t.Errorf("-no-lived: exit %d\n%s", code, out.String())
	}
}

func TestBadAllowlistIsAnError(t *testing.T) {
	setup(t, resultsJSON)
	if err := os.WriteFile("allow.txt", []byte("p | F | CONDITIONALS_NEGATION | a < b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := run([]string{"-allow", "allow.txt", "p=res.json"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "allow.txt:1: want DIR | FUNCTION | MUTATOR | SNIPPET | REASON") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}

// TestSourcesAsTheyWereMutated: with a copy of the sources given, the
// report reads lines from it, not from the package as it is now.
func TestSourcesAsTheyWereMutated(t *testing.T) {
	setup(t, resultsJSON)
	if err := os.MkdirAll("snap", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename("p/p.go", "snap/p.go"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("p/p.go", []byte("package p\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := run([]string{"p=res.json:snap"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "p/p.go:12:7 CONDITIONALS_NEGATION in (*M).acquire: if x == r && r == 2 {") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

func TestFunctionNames(t *testing.T) {
	setup(t, resultsJSON)
	sf, err := loadSource("p/p.go")
	if err != nil {
		t.Fatal(err)
	}
	for line, want := range map[int]string{5: "(*keyMap).remove", 11: "(*M).acquire", 16: "Free", 7: ""} {
		if got, _ := sf.at(line); got != want {
			t.Errorf("line %d: function %q, want %q", line, got, want)
		}
	}
}
