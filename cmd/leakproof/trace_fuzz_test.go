package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/trace"
)

// FuzzTraceCheck feeds arbitrary bytes through what `trace check FILE` and
// `trace show FILE` do (trace.Read, trace.Check and the
// report's formatting): any input gives exit 0, 1 or 2, never a panic, and
// 2 exactly when the reader rejects it or finds no event.
func FuzzTraceCheck(f *testing.F) {
	f.Add([]byte(traceOf(f, missingDestroy()...)))
	f.Add([]byte(traceOf(f, unrefWithoutRef()...)))
	good := traceOf(f, missingDestroy()...)
	f.Add([]byte(good[:len(good)/2]))
	f.Add([]byte("hello\n"))
	f.Add([]byte(`{"seq":1,"event":"socket_open","subchannel":1}` + "\n" + `{"seq":2,"event":"destroy","subchannel":1,"socket":null}` + "\n"))
	f.Add([]byte(`{"seq":3,"event":"leak","subchannel":2,"refs_before":-5,"time":"0001-01-01T00:00:00Z"}` + "\n"))
	f.Add([]byte(`{"seq":18446744073709551615,"event":"unref","subchannel":18446744073709551615,"manager":1}` + "\n"))
	f.Add([]byte("\n\n" + `{"seq":1,"event":"manager_close","manager":1}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, readErr := trace.Read(bytes.NewReader(data))
		var out, errOut strings.Builder
		code := checkTraceReader(bytes.NewReader(data), "fuzz", &out, &errOut)
		switch code {
		case exitOK, exitProblem:
			if readErr != nil {
				t.Fatalf("exit %d on a trace the reader rejects (%v)", code, readErr)
			}
		case exitError:
			if readErr == nil && !strings.Contains(errOut.String(), "no trace events") {
				t.Fatalf("exit 2 on a readable trace: %s", errOut.String())
			}
			if errOut.Len() == 0 {
				t.Fatal("exit 2 without a message")
			}
		default:
			t.Fatalf("exit %d", code)
		}
		if code := showTraceReader(bytes.NewReader(data), "fuzz", 1, io.Discard, io.Discard); code != exitOK && code != exitProblem && code != exitError {
			t.Fatalf("show: exit %d", code)
		}
	})
}
