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
