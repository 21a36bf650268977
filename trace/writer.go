package trace

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// A Writer writes the events of every manager as JSON lines. Create it
// with NewWriter before the channels whose trace you want, and Close it
// after they have closed.
type Writer struct {
	sub  *Subscription
	done chan struct{}
	err  error // set by the writer goroutine before done is closed
}

// ErrDropped is returned by Writer.Close when the writer fell so far
// behind that events were lost: the trace is incomplete.
var ErrDropped = errors.New("trace: writer fell behind and was dropped; the trace is incomplete")

// NewWriter starts writing every event (or those filter accepts) to w as
// JSON lines. It may fall up to buf events (65536 if buf <= 0) behind the
// managers; its buffer grows on demand up to that bound.
func NewWriter(w io.Writer, buf int, filter func(*Event) bool) *Writer {
	if buf <= 0 {
		buf = 1 << 16
	}
	tw := &Writer{sub: Subscribe(buf, filter), done: make(chan struct{})}
	go tw.run(w)
	return tw
}

func (tw *Writer) run(w io.Writer) {
	defer close(tw.done)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	var batch []Event
	for {
		if batch != nil {
			time.Sleep(ReadPace) // let the next batch gather
		}
		_, open := <-tw.sub.Ready()
		batch, _ = tw.sub.Read(batch)
		for _, e := range batch {
			if tw.err != nil {
				break // drain
			}
			if err := enc.Encode(e); err != nil {
				tw.err = fmt.Errorf("trace: writing: %w", err)
			}
		}
		if !open {
			break
		}
		// Flush once a batch: the next one may be a while.
		if err := bw.Flush(); err != nil && tw.err == nil {
			tw.err = fmt.Errorf("trace: writing: %w", err)
		}
	}
	if err := bw.Flush(); err != nil && tw.err == nil {
		tw.err = fmt.Errorf("trace: writing: %w", err)
	}
}

// Close stops the writer after writing every event already received, and
// returns the first write error, or ErrDropped if events were lost.
func (tw *Writer) Close() error {
	tw.sub.Close()
	<-tw.done
	if tw.err != nil {
		return tw.err
	}
	if tw.sub.Dropped() {
		return ErrDropped
	}
	return nil
}
