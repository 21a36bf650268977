package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A throwaway module whose tests stand for grpc's: one fails substituted the
// first time only (a timing flake), one fails substituted every time (a
// regression), one passes in both modes. The harness's own go test runs
// them, as it runs grpc's.
const fakeTests = `package fake

import (
	"os"
	"path/filepath"
	"testing"
)

func substituted() bool { return os.Getenv("LEAKPROOF_CONFORMANCE") == "substitute" }

func TestOnceFlaky(t *testing.T) {
	marker := filepath.Join(os.Getenv("FAKE_MARKER_DIR"), "failed-once")
	if substituted() {
		if _, err := os.Stat(marker); err != nil {
			os.WriteFile(marker, nil, 0o644)
			t.Fatal("first substituted run fails")
		}
	}
}

func TestAlwaysBroken(t *testing.T) {
	if substituted() {
		t.Fatal("fails substituted every time")
	}
}

func TestFine(t *testing.T) {}
`

func TestRerunTellsAFlakeFromARegression(t *testing.T) {
	work := t.TempDir()
	pkg := filepath.Join(work, "fake")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		filepath.Join(work, "go.mod"):      "module example.com/fake\n\ngo 1.21\n",
		filepath.Join(pkg, "fake.go"):      "package fake\n",
		filepath.Join(pkg, "fake_test.go"): fakeTests,
	} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "")
	t.Setenv("FAKE_MARKER_DIR", work)

	tg := target{dir: "fake"}
	res := pkgResult{dir: tg.dir}
	var err error
	if res.base, err = runTests(work, tg, "baseline", 1, time.Minute, filepath.Join(work, "base.json")); err != nil {
		t.Fatal(err)
	}
	if res.sub, err = runTests(work, tg, "substitute", 1, time.Minute, filepath.Join(work, "sub.json")); err != nil {
		t.Fatal(err)
	}
	if reg, _, _ := res.regressions(nil); !slices.Equal(reg, []string{"TestAlwaysBroken", "TestOnceFlaky"}) {
		t.Fatalf("before reruns, failing substituted only: %v, want TestAlwaysBroken and TestOnceFlaky", reg)
	}

	if err := res.rerun(work, tg, nil, 3, time.Minute, work); err != nil {
		t.Fatal(err)
	}
	reg, _, flaky := res.regressions(nil)
	if !slices.Equal(reg, []string{"TestAlwaysBroken"}) || !slices.Equal(flaky, []string{"TestOnceFlaky"}) {
		t.Fatalf("after reruns: regressions %v, flaky %v; want [TestAlwaysBroken], [TestOnceFlaky]", reg, flaky)
	}
	if got, want := res.reruns["TestAlwaysBroken"], (rerunResult{basePass: 3, baseRuns: 3, subPass: 0, subRuns: 3}); got != want {
		t.Errorf("TestAlwaysBroken reruns = %+v, want %+v", got, want)
	}
	if got, want := res.reruns["TestOnceFlaky"], (rerunResult{basePass: 3, baseRuns: 3, subPass: 3, subRuns: 3}); got != want {
		t.Errorf("TestOnceFlaky reruns = %+v, want %+v", got, want)
	}
	if _, ok := res.reruns["TestFine"]; ok {
		t.Error("TestFine passed in both modes and was rerun")
	}
}

func TestRunPatternSelectsOneUnit(t *testing.T) {
	for u, want := range map[string]string{
		"Test/MetricsAndTracesOptionEnabled": "^Test$/^MetricsAndTracesOptionEnabled$",
		"TestPickFirst":                      "^TestPickFirst$",
		"Test/A.b":                           `^Test$/^A\.b$`,
	} {
		if got := runPattern(u); got != want {
			t.Errorf("runPattern(%q) = %q, want %q", u, got, want)
		}
	}
}
