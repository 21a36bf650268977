package leaktest

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Variables for stubbing in tests.
var (
	osExit              = os.Exit
	osStderr  io.Writer = os.Stderr
	flagValue           = func(name string) string {
		if f := flag.Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
)

// TestingM is the part of testing.M that VerifyTestMain uses.
type TestingM interface {
	Run() int
}

// VerifyTestMain takes a baseline, runs the tests, and, if they pass, fails
// the run when goroutines, file descriptors or sockets to Backends are not
// back at the baseline by the deadline. It calls os.Exit. Use it as the whole
// of TestMain:
//
//	func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
//
// The files the testing package opens for -test.cpuprofile and -test.trace,
// which it never closes, are not reported.
func VerifyTestMain(m TestingM, options ...Option) {
	base, _ := Take()
	code := m.Run()
	if code == 0 {
		t := &mainT{w: osStderr}
		opts := append([]Option{IgnoreFD(testingFile)}, options...)
		VerifyNone(t, base, opts...)
		if t.failed {
			code = 1
		}
	}
	osExit(code)
}

// testingFile reports whether target is a profile the testing package keeps
// open until the process exits.
func testingFile(target string) bool {
	dir := flagValue("test.outputdir")
	for _, name := range [...]string{"test.cpuprofile", "test.trace"} {
		p := flagValue(name)
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if abs, err := filepath.Abs(p); err == nil && abs == target {
			return true
		}
	}
	return false
}

// mainT writes failures to stderr, as goleak.VerifyTestMain does.
type mainT struct {
	w      io.Writer
	failed bool
}

func (t *mainT) Helper() {}

func (t *mainT) Errorf(format string, args ...any) {
	if !t.failed {
		fmt.Fprintln(t.w, "leaktest: errors on successful test run:")
	}
	t.failed = true
	fmt.Fprintf(t.w, format+"\n", args...)
}
