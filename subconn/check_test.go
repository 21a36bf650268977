package subconn

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/leakproof/leakproof/trace"
)

func TestTraceWriterRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	tw := trace.NewWriter(&buf, 0, func(e *trace.Event) bool { return e.Target == "fake:///roundtrip" })
	cc := newFakeCC()
	m := NewManager(cc, WithTarget("fake:///roundtrip"), WithTraceRing(0))
	h, _ := m.Acquire(addr("10.0.0.1:1"), "one")
	h.Release("done")
	m.Close()
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	events, err := trace.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 7 { // manager_open, create, ref, unref, shutdown, destroy, manager_close
		t.Fatalf("round trip gave %d events: %v", len(events), events)
	}
	if rep := trace.Check(events); !rep.Clean() || rep.Destroyed != 1 {
		t.Fatalf("trace.Check = %+v", rep)
	}
}

func h2frame(typ byte, payload []byte) []byte {
	hdr := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, 0, 0, 0, 0, 0}
	return append(hdr, payload...)
}

func TestH2SnifferFindsGoAwayAcrossReads(t *testing.T) {
	ga := make([]byte, 8)
	binary.BigEndian.PutUint32(ga[4:], 11) // ENHANCE_YOUR_CALM
	ga = append(ga, "too_many_pings"...)
	stream := append(h2frame(h2FrameSettings, make([]byte, 12)), h2frame(0x1, make([]byte, 300))...)
	stream = append(stream, h2frame(h2FrameGoAway, ga)...)
	for _, chunk := range []int{1, 3, 7, 64, len(stream)} {
		var s h2Sniffer
		var code uint32
		var seen bool
		for p := stream; len(p) > 0; {
			n := min(chunk, len(p))
			if c, ok := s.feed(p[:n]); ok {
				code, seen = c, true
			}
			p = p[n:]
		}
		if !seen || code != 11 || h2ErrCode(code) != "ENHANCE_YOUR_CALM" {
			t.Errorf("chunk %d: seen %v code %d", chunk, seen, code)
		}
	}
}

func TestH2SnifferTurnsOffForTLS(t *testing.T) {
	var s h2Sniffer
	// A TLS ServerHello record, then bytes that would look like a GOAWAY.
	tls := append([]byte{0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0, 0, 0}, h2frame(h2FrameGoAway, make([]byte, 8))...)
	if _, ok := s.feed(tls); ok || !s.off {
		t.Fatalf("sniffer on TLS bytes: goaway %v, off %v", ok, s.off)
	}
}
