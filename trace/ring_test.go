package trace

import (
	"slices"
	"testing"
)

func seqs(events []Event) []uint64 {
	var out []uint64
	for _, e := range events {
		out = append(out, e.Seq)
	}
	return out
}

// TestRingKeepsTheNewestAcrossWrapsAndResizes: the ring keeps the newest
// size events, oldest first, through wrap-around, shrinking, growing and
// switching off.
func TestRingKeepsTheNewestAcrossWrapsAndResizes(t *testing.T) {
	var r Ring
	r.Resize(3)
	add := func(from, to uint64) {
		for s := from; s <= to; s++ {
			r.Add(&Event{Seq: s})
		}
	}
	check := func(what string, want ...uint64) {
		t.Helper()
		if got := seqs(r.Events()); !slices.Equal(got, want) {
			t.Fatalf("%s: ring holds %v, want %v", what, got, want)
		}
	}
	add(1, 2)
	check("partly filled", 1, 2)
	add(3, 7)
	check("after wrapping", 5, 6, 7)
	r.Resize(3)
	check("resize to the same size", 5, 6, 7)
	r.Resize(2)
	check("shrunk", 6, 7)
	add(8, 8)
	check("shrunk, then one more", 7, 8)
	r.Resize(4)
	check("grown", 7, 8)
	add(9, 11)
	check("grown and filled", 8, 9, 10, 11)
	add(12, 12)
	check("grown, filled and wrapped", 9, 10, 11, 12)
	r.Resize(-1)
	add(13, 13)
	check("switched off")
	if r.Cap() != 0 {
		t.Fatalf("size after Resize(-1) = %d, want 0", r.size)
	}
}

// A shrunk ring keeps no more than its new size: its old array is left to
// the collector.
func TestRingShrinkFreesTheOldArray(t *testing.T) {
	var r Ring
	r.Resize(1000)
	for i := range 1500 {
		r.Add(&Event{Seq: uint64(i + 1), Manager: 1, Subchannel: 1, Kind: KindRef})
	}
	r.Resize(10)
	if cap(r.buf) > 10 {
		t.Fatalf("after shrinking to 10 the ring's array has room for %d events", cap(r.buf))
	}
	evs := r.Events()
	if len(evs) != 10 || evs[0].Seq != 1491 || evs[9].Seq != 1500 {
		t.Fatalf("kept %d events from seq %d, want the latest 10 (1491..1500)", len(evs), evs[0].Seq)
	}
	r.Add(&Event{Seq: 1501, Manager: 1, Subchannel: 1, Kind: KindRef})
	if evs := r.Events(); evs[0].Seq != 1492 || evs[9].Seq != 1501 {
		t.Fatalf("after one more: %d..%d, want 1492..1501", evs[0].Seq, evs[9].Seq)
	}
}

// TestRingGrowsToItsSizeExactly: a full ring's array holds size events and
// no more (each is 136 bytes, and a manager keeps 512 by default).
func TestRingGrowsToItsSizeExactly(t *testing.T) {
	for _, size := range []int{1, 7, 100, 512, 1000} {
		var r Ring
		r.Resize(size)
		for i := range 2*size + 3 {
			r.Add(&Event{Seq: uint64(i)})
			if cap(r.buf) > size {
				t.Fatalf("size %d: after %d events the array holds %d", size, i+1, cap(r.buf))
			}
		}
	}
}
