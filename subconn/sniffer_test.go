package subconn

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

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

func TestH2SnifferShortGoAwayAndUnknownCodes(t *testing.T) {
	var s h2Sniffer
	stream := append(h2frame(h2FrameSettings, nil), h2frame(h2FrameGoAway, []byte{0, 0, 0})...)
	if code, ok := s.feed(stream); !ok || code != 0 {
		t.Fatalf("short GOAWAY: code %d, seen %v; want 0, true", code, ok)
	}
	if got := h2ErrCode(0xd); got != "HTTP_1_1_REQUIRED" {
		t.Errorf("h2ErrCode(0xd) = %q", got)
	}
	if got := h2ErrCode(0xe); got != "0xe" {
		t.Errorf("h2ErrCode(0xe) = %q, want 0xe", got)
	}
}

// TestH2SnifferReadsTheCodeOfAnEightByteGoAway: a GOAWAY without debug data
// has exactly the 8 bytes of last stream id and error code.
func TestH2SnifferReadsTheCodeOfAnEightByteGoAway(t *testing.T) {
	var s h2Sniffer
	payload := []byte{0, 0, 0, 1, 0, 0, 0, 2} // last stream 1, INTERNAL_ERROR
	stream := append(h2frame(h2FrameSettings, nil), h2frame(h2FrameGoAway, payload)...)
	if code, ok := s.feed(stream); !ok || code != 2 {
		t.Fatalf("GOAWAY with 8 payload bytes: code %d, seen %v; want 2, true", code, ok)
	}
}

// TestH2SnifferNeverSpins: the sniffer consumes every byte it is fed, in
// any chunking, and returns.
func TestH2SnifferNeverSpins(t *testing.T) {
	ga := make([]byte, 8)
	binary.BigEndian.PutUint32(ga[4:], 11)
	stream := append(h2frame(h2FrameSettings, make([]byte, 6)), h2frame(0x0, nil)...) // an empty DATA frame
	stream = append(stream, h2frame(0x1, make([]byte, 40))...)
	stream = append(stream, h2frame(h2FrameGoAway, ga)...)
	for _, chunk := range []int{1, 2, 9, 10, len(stream)} {
		var s h2Sniffer
		var seen bool
		within(t, fmt.Sprintf("feeding in chunks of %d", chunk), 2*time.Second, func() {
			for p := stream; len(p) > 0; {
				n := min(chunk, len(p))
				if _, ok := s.feed(p[:n]); ok {
					seen = true
				}
				p = p[n:]
			}
			s.feed(nil)
		})
		if !seen || s.off {
			t.Fatalf("chunks of %d: GOAWAY seen %v, sniffer off %v", chunk, seen, s.off)
		}
	}
}
