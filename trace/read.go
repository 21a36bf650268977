package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// A ReadError is a line of a JSON-lines trace that could not be read.
type ReadError struct {
	Line int   // 1-based
	Err  error // what was wrong
}

// Error names the line and what is wrong with it.
func (e *ReadError) Error() string { return fmt.Sprintf("trace line %d: %v", e.Line, e.Err) }

// Unwrap returns the error the line caused.
func (e *ReadError) Unwrap() error { return e.Err }

// knownKinds are the kinds Read accepts: a kind it does not know would pass
// the checker unexamined.
var knownKinds = map[Kind]bool{
	KindCreate: true, KindRef: true, KindUnref: true, KindConnect: true, KindState: true,
	KindGoAway: true, KindConnLost: true, KindShutdown: true, KindSocketOpen: true,
	KindSocketClose: true, KindDrainTimeout: true, KindDestroy: true, KindLeak: true,
	KindManagerOpen: true, KindManagerClose: true, KindOrphan: true,
}

// maxLine bounds one line of a trace; longer lines are an error.
const maxLine = 1 << 20

// Read reads a JSON-lines trace (the format of Event). Blank lines are
// skipped. A malformed or truncated line, or an unknown event kind, is a
// *ReadError naming its line.
func Read(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxLine)
	var out []Event
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(b, &e); err != nil {
			return out, &ReadError{Line: line, Err: err}
		}
		if e.Kind == "" || e.Seq == 0 {
			return out, &ReadError{Line: line, Err: errors.New(`not a trace event: "seq" and "event" are required`)}
		}
		if !knownKinds[e.Kind] {
			return out, &ReadError{Line: line, Err: fmt.Errorf("unknown event kind %q", e.Kind)}
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return out, &ReadError{Line: line + 1, Err: err}
	}
	return out, nil
}
