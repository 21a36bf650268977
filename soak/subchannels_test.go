package soak

import (
	"testing"
	"time"
)

// A backend's subchannels are explained by the endpoints that list it now
// or listed it within the bound, and by the subchannels of endpoints that
// stopped listing it within the bound, which may still drain.
func TestSubchannelsExplainedByListingsAndDrains(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const bound = 2 * time.Second
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name     string
		listings []listing
		now      time.Duration
		want     int
	}{
		{"listed once", []listing{{at(0), map[string]int{"b0": 1}}}, time.Second, 1},
		{"not listed", []listing{{at(0), map[string]int{"b1": 1}}}, time.Second, 0},
		{"twice, then once, within the bound", []listing{{at(0), map[string]int{"b0": 2}}, {at(time.Second), map[string]int{"b0": 1}}}, 2 * time.Second, 2},
		{"twice, then once, past the bound", []listing{{at(0), map[string]int{"b0": 2}}, {at(time.Second), map[string]int{"b0": 1}}}, 4 * time.Second, 1},
		{"removed and listed again: the old one drains", []listing{{at(0), map[string]int{"b0": 1}}, {at(time.Second), map[string]int{}}, {at(1200 * time.Millisecond), map[string]int{"b0": 1}}}, 1500 * time.Millisecond, 2},
		{"removed twice and listed again", []listing{
			{at(0), map[string]int{"b0": 1}}, {at(500 * time.Millisecond), map[string]int{}}, {at(700 * time.Millisecond), map[string]int{"b0": 1}},
			{at(time.Second), map[string]int{}}, {at(1200 * time.Millisecond), map[string]int{"b0": 1}},
		}, 1500 * time.Millisecond, 3},
		{"removed and listed again, past the bound", []listing{{at(0), map[string]int{"b0": 1}}, {at(time.Second), map[string]int{}}, {at(1200 * time.Millisecond), map[string]int{"b0": 1}}}, 3500 * time.Millisecond, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &subchannelWatch{listings: tt.listings}
			if got := w.explained("b0", at(tt.now), bound); got != tt.want {
				t.Errorf("explained at %v = %d, want %d", tt.now, got, tt.want)
			}
		})
	}
}

// TestSubchannelsExplainedDuringAClusterSwitch: while an xDS cluster switch
// runs the old and the new cluster side by side, a backend both list
// explains a subchannel from each, for the bound after the switch.
func TestSubchannelsExplainedDuringAClusterSwitch(t *testing.T) {
	var w subchannelWatch
	t0 := time.Unix(1000, 0)
	const bound = 2 * time.Second
	w.list(t0, map[string]int{"b0": 1, "b1": 1}, bound)
	w.listBoth(t0.Add(time.Second), map[string]int{"b1": 1}, bound) // cluster b lists b1 only
	w.list(t0.Add(time.Second+10*time.Millisecond), map[string]int{"b1": 1}, bound)
	for _, c := range []struct {
		name string
		at   time.Duration
		want int
	}{
		{"b1", time.Second + 500*time.Millisecond, 2}, // both clusters' subchannels
		{"b0", time.Second + 500*time.Millisecond, 1}, // only the old cluster's, draining
		{"b1", 4 * time.Second, 1},                    // past the bound: the new cluster's alone
	} {
		if got := w.explained(c.name, t0.Add(c.at), bound); got != c.want {
			t.Errorf("explained(%s) at +%v = %d, want %d", c.name, c.at, got, c.want)
		}
	}
}
