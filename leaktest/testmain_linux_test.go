package leaktest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyTestMainReportsLeakedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leaked.db")
	var f *os.File
	code, out := runMain(t, func() int {
		var err error
		f, err = os.Create(path)
		if err != nil {
			t.Error(err)
		}
		return 0
	})
	if f != nil {
		f.Close()
	}
	if code != 1 || !strings.Contains(out, path) {
		t.Errorf("exit code %d, stderr:\n%s\nwant 1 and a report naming %s", code, out, path)
	}
}

// The testing package opens -test.cpuprofile and never closes it; that is
// not the user's leak.
func TestVerifyTestMainIgnoresCPUProfile(t *testing.T) {
	dir := t.TempDir()
	defer func(f func(string) string) { flagValue = f }(flagValue)
	flagValue = func(name string) string {
		switch name {
		case "test.cpuprofile":
			return "cpu.out"
		case "test.outputdir":
			return dir
		}
		return ""
	}
	var f *os.File
	code, out := runMain(t, func() int {
		var err error
		f, err = os.Create(filepath.Join(dir, "cpu.out"))
		if err != nil {
			t.Error(err)
		}
		return 0
	})
	if f != nil {
		f.Close()
	}
	if code != 0 || out != "" {
		t.Errorf("exit code %d, stderr:\n%s\nwant 0 and nothing for the CPU profile", code, out)
	}
}
