package trace

import (
	"errors"
	"strings"
	"testing"
)

func TestReadNamesTheBadLine(t *testing.T) {
	good := `{"seq":1,"manager":1,"subchannel":1,"key":"k","event":"create","refs_before":0,"refs_after":0}`
	for name, tc := range map[string]struct {
		in   string
		line int
	}{
		"garbage":      {good + "\n\nnot json\n", 3},
		"truncated":    {good + "\n" + good[:40], 2},
		"not event":    {good + "\n{\"a\":1}\n", 2},
		"huge line":    {good + "\n" + strings.Repeat("x", maxLine+10) + "\n", 2},
		"unknown kind": {good + "\n" + strings.Replace(good, `"create"`, `"refx"`, 1) + "\n", 2},
	} {
		_, err := Read(strings.NewReader(tc.in))
		var te *ReadError
		if !errors.As(err, &te) || te.Line != tc.line {
			t.Errorf("%s: err = %v, want a ReadError at line %d", name, err, tc.line)
		}
	}
	events, err := Read(strings.NewReader(good + "\n" + good + "\n"))
	if err != nil || len(events) != 2 || events[0].Kind != KindCreate {
		t.Fatalf("Read(good) = %v, %v", events, err)
	}
}

func TestReadRejectsUnknownKindsNamingTheLine(t *testing.T) {
	in := `{"seq":1,"manager":1,"subchannel":1,"event":"create"}` + "\n" +
		`{"seq":2,"manager":1,"subchannel":1,"event":"unreff"}` + "\n"
	_, err := Read(strings.NewReader(in))
	var te *ReadError
	if !errors.As(err, &te) || te.Line != 2 || !strings.Contains(err.Error(), `unknown event kind "unreff"`) {
		t.Fatalf("err = %v, want line 2 naming the unknown kind", err)
	}
	// Every kind the package defines is known.
	for _, k := range []Kind{KindCreate, KindRef, KindUnref, KindConnect, KindState, KindGoAway, KindConnLost,
		KindShutdown, KindSocketOpen, KindSocketClose, KindDrainTimeout, KindDestroy, KindLeak,
		KindManagerOpen, KindManagerClose, KindOrphan} {
		if !knownKinds[k] {
			t.Errorf("Read rejects %q", k)
		}
	}
}
