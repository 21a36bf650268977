package leaktest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyTestMainUnderCPUProfile: `go test -cpuprofile` makes the testing
// package open the profile after TestMain's baseline and never close it.
// This runs the package's own test binary again, with -test.cpuprofile and
// no tests: its TestMain, VerifyTestMain, must find the real flag and not
// report the profile. GOGC=off: the garbage collector would close the
// profile's *os.File once the testing package drops it, which can hide a
// report of it, or not, depending on when it runs.
func TestVerifyTestMainUnderCPUProfile(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(t.TempDir(), "cpu.out")
	cmd := exec.Command(exe, "-test.run=^$", "-test.cpuprofile="+profile)
	cmd.Env = append(os.Environ(), "GOGC=off")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "leaked") {
		t.Errorf("test binary with -test.cpuprofile: %v, output:\n%s", err, out)
	}
	if _, err := os.Stat(profile); err != nil {
		t.Errorf("no CPU profile written: %v", err)
	}
}
