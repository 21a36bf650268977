package leaktest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/leaktest"
)

// TestFindSortsLeakedFDsByNumber: Find reports leaked descriptors sorted by
// number, whatever order the kernel lists them in and a map hands them back.
// Eight of them: a report that kept the map's order would come out sorted
// by chance once in 40,320 runs.
func TestFindSortsLeakedFDsByNumber(t *testing.T) {
	dir := t.TempDir()
	base, err := leaktest.Take()
	if err != nil {
		t.Fatal(err)
	}
	var opened []int
	for i := range 8 {
		f, err := os.Create(filepath.Join(dir, strings.Repeat("f", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		opened = append(opened, int(f.Fd()))
	}
	l := leaktest.Find(base, leaktest.Deadline(failDeadline))
	if l == nil {
		t.Fatal("Find found nothing with eight files open")
	}
	var nums []int
	for _, fd := range l.FDs {
		nums = append(nums, fd.Num)
	}
	slices.Sort(opened)
	if !slices.Equal(nums, opened) {
		t.Errorf("Find reported descriptors %v, want %v in this order", nums, opened)
	}
}

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
