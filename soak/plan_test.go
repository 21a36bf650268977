package soak

import (
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		d      string
		n      int
		phase  string
		cycles int
	}{
		{"30s", 11, "2.545454545s", 1},
		{"15s", 11, "1.181818181s", 1},
		{"1h", 11, "2.973553719s", 110},
		{"4s", 2, "1s", 1},
	} {
		d, _ := time.ParseDuration(tc.d)
		phase, cycles := plan(d, tc.n)
		if phase.String() != tc.phase || cycles != tc.cycles {
			t.Errorf("plan(%s, %d) = %v, %d; want %s, %d", tc.d, tc.n, phase, cycles, tc.phase, tc.cycles)
		}
		if phase > maxPhase || phase < MinPhase {
			t.Errorf("plan(%s, %d): phase %v outside [%v, %v]", tc.d, tc.n, phase, MinPhase, maxPhase)
		}
	}
}
