package soak

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/jsontime"
)

// leakyProcess is a test double of a soaked process, sampled every 200ms
// for d: its series go up and down with the phases (a 39s cycle of faults,
// plus noise) and, with leak set, one series also climbs slowly. A real
// slow leak takes the hour-long soak to show; the double makes the same
// samples in no time.
func leakyProcess(d time.Duration, leak func(s *Sample, minutes float64)) []Sample {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []Sample
	for at := time.Duration(0); at <= d; at += 200 * time.Millisecond {
		phase := float64(at%(39*time.Second)) / float64(39*time.Second)
		burst := 0
		if phase > 0.8 { // churn: channels and sockets come and go
			burst = rng.IntN(12)
		}
		s := Sample{
			At:         jsontime.Duration(at),
			Goroutines: 60 + 3*burst + rng.IntN(8),
			ClientFDs:  6 + burst,
			OtherFDs:   9 + rng.IntN(2),
			BackendFDs: map[string]int{"b0": 2 + rng.IntN(2), "frozen": 1},
			HeapInUse:  uint64(20*mib + rng.IntN(8*mib)),
			HeapLive:   uint64(10*mib + rng.IntN(mib)),
			Records:    8 + burst/2,
		}
		if leak != nil {
			leak(&s, at.Minutes())
		}
		s.FDs = s.ClientFDs + s.OtherFDs + s.BackendFDs["b0"] + s.BackendFDs["frozen"]
		out = append(out, s)
	}
	return out
}

func climbing(slopes []Slope) []string {
	var out []string
	for _, s := range slopes {
		if s.Climbing {
			out = append(out, s.Series)
		}
	}
	return out
}

// TestSlopeCheckCatchesASlowLeak: over a 20-minute run, a steady process
// passes, and each slow leak (one descriptor a minute from the frozen
// backend, 2 MiB of heap a minute, one manager record a minute) fails the
// growth check naming its series, while a short run is not judged at all.
func TestSlopeCheckCatchesASlowLeak(t *testing.T) {
	const d = 20 * time.Minute
	warm := warmUp(d)
	backends := []string{"b0", "frozen"}

	clean := runSlopes(leakyProcess(d, nil), warm, d, backends)
	if got := climbing(clean); len(got) != 0 {
		t.Fatalf("a steady process climbs: %v\n%v", got, clean)
	}
	if c := growthCheck(clean, warm); !c.Pass {
		t.Fatalf("growth check failed a steady process: %s", c.Detail)
	}

	for _, tc := range []struct {
		name   string
		leak   func(*Sample, float64)
		series []string
	}{
		{"fd a minute", func(s *Sample, m float64) { s.BackendFDs["frozen"] += int(m) }, []string{"fds", "fds: backend frozen"}},
		{"heap 2MiB a minute", func(s *Sample, m float64) { s.HeapInUse += uint64(m * 2 * mib); s.HeapLive += uint64(m * 2 * mib) }, []string{"heap in use", "heap live"}},
		{"record a minute", func(s *Sample, m float64) { s.Records += int(m) }, []string{"live manager records"}},
		{"goroutines 2 a minute", func(s *Sample, m float64) { s.Goroutines += int(2 * m) }, []string{"goroutines"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slopes := runSlopes(leakyProcess(d, tc.leak), warm, d, backends)
			if got := climbing(slopes); strings.Join(got, ",") != strings.Join(tc.series, ",") {
				t.Errorf("climbing %v, want %v", got, tc.series)
			}
			c := growthCheck(slopes, warm)
			if c.Pass || !strings.Contains(c.Detail, tc.series[0]+":") {
				t.Errorf("growth check: pass %v, %s; want a failure naming %s", c.Pass, c.Detail, tc.series[0])
			}
			// The same leak over a run too short to judge is reported only.
			short := runSlopes(leakyProcess(2*time.Minute, tc.leak), warmUp(2*time.Minute), 2*time.Minute, backends)
			if got := climbing(short); len(got) != 0 {
				t.Errorf("a 2-minute run was judged: %v climb", got)
			}
		})
	}
}

// TestFitIsLeastSquares checks the slope on exact lines and noise.
func TestFitIsLeastSquares(t *testing.T) {
	var line []point
	for i := range 61 {
		line = append(line, point{time.Duration(i) * time.Second, 5 + 3*float64(i)/60})
	}
	if slope, icpt := fit(line); slope < 2.999 || slope > 3.001 || icpt < 4.999 || icpt > 5.001 {
		t.Fatalf("fit of 5 + 3/min = %v/min, intercept %v", slope, icpt)
	}
	s := growthRule{minPoints: 3, minRise: 2}.judge("x", "fds", line)
	if !s.Climbing || s.Rise() < 2.99 || s.Rise() > 3.01 {
		t.Fatalf("judge = %+v, want climbing with a rise of 3", s)
	}
	if s := (growthRule{minPoints: 3, minRise: 4}).judge("x", "fds", line); s.Climbing {
		t.Fatalf("a rise of 3 climbs past minRise 4: %+v", s)
	}
	if s := (growthRule{minPoints: 100}).judge("x", "fds", line); s.Judged {
		t.Fatalf("61 points judged with minPoints 100: %+v", s)
	}
}
