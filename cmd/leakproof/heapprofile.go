package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/leakproof/leakproof/soak"
)

// heapProfiles writes two heap profiles of the soak's own process, each
// after a GC: heap-warm.pb.gz when the run-level slopes start (the end of
// warm-up) and heap-end.pb.gz at 95% of the timeline, before anything
// closes. A heap slope in the verdict is then attributed with
//
//	go tool pprof -sample_index=inuse_space -diff_base heap-warm.pb.gz heap-end.pb.gz
//
// It is called from the soak's sampler (Config.OnSample), one sample at a
// time.
type heapProfiles struct {
	dir   string
	due   []heapProfile
	wrote []string
	err   error
}

type heapProfile struct {
	at   time.Duration
	name string
}

// heapProfileRate is the sampling rate of the profiles: one sample per 4 KiB
// allocated on average (the runtime's default, 512 KiB, leaves a slope of a
// few KiB a minute to a handful of samples).
const heapProfileRate = 4 << 10

func newHeapProfiles(dir string, duration time.Duration) *heapProfiles {
	runtime.MemProfileRate = heapProfileRate
	warm := soak.WarmUp(duration)
	return &heapProfiles{dir: dir, due: []heapProfile{
		{at: warm, name: "heap-warm.pb.gz"},
		{at: max(warm, duration-duration/20), name: "heap-end.pb.gz"},
	}}
}

func (h *heapProfiles) sample(s soak.Sample) {
	for len(h.due) > 0 && time.Duration(s.At) >= h.due[0].at && h.err == nil {
		path := filepath.Join(h.dir, h.due[0].name)
		h.due = h.due[1:]
		if h.err = writeHeapProfile(path); h.err == nil {
			h.wrote = append(h.wrote, path)
		}
	}
}

// result reports the profiles written and the first error; a run that
// ended before a profile was due wrote fewer.
func (h *heapProfiles) result() ([]string, error) {
	if h.err != nil {
		return h.wrote, fmt.Errorf("--heap-profiles: %w", h.err)
	}
	return h.wrote, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC() // the profile is as of the last GC
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
