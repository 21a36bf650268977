package trace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// FuzzRead feeds arbitrary bytes to Read and Check. Bad input
// is a *ReadError naming a line of the input, with the events of the lines
// before it; whatever is read writes back as a trace that reads the same;
// and Check's report adds up. Nothing panics.
func FuzzRead(f *testing.F) {
	good := `{"seq":1,"time":"2026-11-22T10:00:00.000000001Z","manager":1,"target":"dns:///svc:443","subchannel":7,"key":"127.0.0.1:50051","event":"create","refs_before":0,"refs_after":0}`
	for _, s := range []string{
		good + "\n",
		good + "\n" + `{"seq":2,"manager":1,"subchannel":7,"event":"ref","refs_before":0,"refs_after":1,"holder":"h"}` + "\n",
		`{"seq":3,"event":"socket_open","subchannel":7,"socket":{"id":9,"local":"127.0.0.1:1","remote":"127.0.0.1:2"}}` + "\n" + `{"seq":4,"event":"destroy","subchannel":7}`,
		`{"seq":1,"event":"manager_close","manager":1}`,
		"\n\n  \n",
		"not json\n",
		good[:40],
		`{"seq":0,"event":"create"}`,
		`{"seq":1,"event":""}`,
		`{"seq":-1,"event":"ref"}`,
		`{"seq":1,"event":"ref","time":"yesterday"}`,
		`{"seq":1,"event":"ref","socket":"x"}`,
		good + " trailing\n",
		"\xff\xfe" + good,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := Read(bytes.NewReader(data))
		lines := bytes.Count(data, []byte("\n")) + 1
		if err != nil {
			var te *ReadError
			if !errors.As(err, &te) || te.Line < 1 || te.Line > lines+1 || te.Err == nil {
				t.Fatalf("error %v: want a *ReadError naming a line of the input (%d lines)", err, lines)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("trace line %d: ", te.Line)) {
				t.Fatalf("error message %q", err)
			}
			if len(events) >= te.Line {
				t.Fatalf("%d events read before the bad line %d", len(events), te.Line)
			}
		}
		for _, e := range events {
			if e.Seq == 0 || e.Kind == "" {
				t.Fatalf("event without seq or kind read: %+v", e)
			}
		}

		// What was read writes back as a trace that reads the same.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, e := range events {
			if err := enc.Encode(e); err != nil {
				t.Fatalf("encoding %+v read from the trace: %v", e, err)
			}
		}
		first := bytes.Clone(buf.Bytes())
		again, err := Read(&buf)
		if err != nil || len(again) != len(events) {
			t.Fatalf("written back, the trace reads as %d events, %v; want %d", len(again), err, len(events))
		}
		buf.Reset()
		for _, e := range again {
			enc.Encode(e)
		}
		if !bytes.Equal(first, buf.Bytes()) {
			t.Fatalf("trace changes on a second round trip:\n%s\n%s", first, buf.Bytes())
		}

		rep := Check(events)
		if rep.Events != len(events) || rep.Destroyed > rep.Subchannels || rep.Live > rep.Subchannels {
			t.Fatalf("report does not add up: %+v", rep)
		}
		for _, p := range rep.Problems {
			switch p.Kind {
			case ProblemLeak, ProblemHolderLeak, ProblemUnbalanced, ProblemInvalid:
			default:
				t.Fatalf("problem of unknown kind: %+v", p)
			}
			if p.Subchannel == 0 || p.Message == "" || p.String() == "" {
				t.Fatalf("problem names no subchannel or says nothing: %+v", p)
			}
		}
	})
}
