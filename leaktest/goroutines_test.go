package leaktest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const dump = `goroutine 7 [select, 2 minutes]:
example.com/p.(*T).loop(0xc000010000, {0x1, 0x2})
	/src/p/t.go:10 +0x1d
created by example.com/p.Start in goroutine 1
	/src/p/start.go:5 +0x55

goroutine 9 [select]:
example.com/p.(*T).loop(0xc000020000, {0x3, 0x4})
	/src/p/t.go:10 +0x1d
created by example.com/p.Start in goroutine 3
	/src/p/start.go:5 +0x55

goroutine 12 [chan receive]:
example.com/q.wait(...)
	/src/q/q.go:3 +0x10
created by example.com/q.Go in goroutine 1
	/src/q/q.go:8 +0x20

goroutine 8 [select, locked to thread]:
example.com/p.(*T).loop(0xc000030000, {0x5, 0x6})
	/src/p/t.go:10 +0x1d
created by example.com/p.Start in goroutine 2
	/src/p/start.go:5 +0x55
`

func TestGroupStacksGroupsIdenticalStacks(t *testing.T) {
	groups := groupStacks([]byte(dump), nil)
	if len(groups) != 2 {
		t.Fatalf("%d groups, want 2: %+v", len(groups), groups)
	}
	g := groups[0]
	if g.Count != 3 || g.State != "select" || g.Top != "example.com/p.(*T).loop" || g.CreatedBy != "example.com/p.Start" || g.At != "/src/p/start.go:5" {
		t.Errorf("first group %+v", g)
	}
	if want := []int{7, 8, 9}; len(g.IDs) != 3 || g.IDs[0] != want[0] || g.IDs[1] != want[1] || g.IDs[2] != want[2] {
		t.Errorf("ids %v, want %v", g.IDs, want)
	}
	if strings.Contains(g.Stack, "0x") || strings.Contains(g.Stack, "in goroutine") {
		t.Errorf("stack keeps values that differ between goroutines:\n%s", g.Stack)
	}
	if got, want := g.Headline(), "3 goroutines in select in example.com/p.(*T).loop, created by example.com/p.Start at /src/p/start.go:5"; got != want {
		t.Errorf("headline %q, want %q", got, want)
	}
	if got, want := groups[1].Headline(), "1 goroutine in chan receive in example.com/q.wait, created by example.com/q.Go at /src/q/q.go:8"; got != want {
		t.Errorf("headline %q, want %q", got, want)
	}
	if kept := groupStacks([]byte(dump), map[int]bool{12: true, 9: true}); len(kept) != 2 || kept[0].Count != 1 || kept[1].Count != 1 {
		t.Errorf("keeping 9 and 12: %+v", kept)
	}
}

func TestLeakedGroupsReadsGoleaksIDs(t *testing.T) {
	if g := leakedGroups(nil); g != nil {
		t.Errorf("no error: %+v", g)
	}
	if g := leakedGroups(errors.New("no ids here")); g != nil {
		t.Errorf("no ids: %+v", g)
	}
	stop := make(chan struct{})
	defer close(stop)
	go blockUntil(stop)
	var id string
	for deadline := time.Now().Add(3 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, g := range Goroutines() {
			if strings.HasSuffix(g.Top, "leaktest.blockUntil") {
				id = strconv.Itoa(g.IDs[0])
			}
		}
	}
	if id == "" {
		t.Fatal("Goroutines does not list the goroutine started")
	}
	g := leakedGroups(errors.New("found unexpected goroutines:\n[Goroutine " + id + " in state chan receive, with x on top of the stack:\n]"))
	if len(g) != 1 || !strings.HasSuffix(g[0].Top, "leaktest.blockUntil") || g[0].State != "chan receive" {
		t.Errorf("leakedGroups = %+v", g)
	}
}

func TestShortStackKeepsTheTopAndTheCreator(t *testing.T) {
	var lines []string
	for i := range 20 {
		lines = append(lines, "f"+strconv.Itoa(i)+"(...)", "\tfile.go:"+strconv.Itoa(i))
	}
	lines = append(lines, "created by g", "\tg.go:1")
	got := strings.Split(shortStack(strings.Join(lines, "\n")), "\n")
	if len(got) != 2*maxFrames+3 || got[0] != "f0(...)" || got[2*maxFrames] != "..." || got[len(got)-2] != "created by g" {
		t.Errorf("shortStack:\n%s", strings.Join(got, "\n"))
	}
	if short := "f(...)\n\tf.go:1"; shortStack(short) != short {
		t.Error("a short stack changed")
	}
}

// TestGoroutinesReadsADumpLargerThanItsFirstBuffer: with a thousand
// goroutines the dump outgrows allStacks' first 64 KiB buffer, and every one
// of them is still listed.
func TestGoroutinesReadsADumpLargerThanItsFirstBuffer(t *testing.T) {
	const n = 1000
	stop := make(chan struct{})
	defer close(stop)
	for range n {
		go blockUntil(stop)
	}
	// A goroutine just started may not have reached blockUntil yet (one run
	// of the whole suite under -race listed 972 of the 1000 there), so the
	// count is read until every one is there; a dump cut to its first
	// buffer never gets there.
	deadline := time.Now().Add(10 * time.Second)
	for {
		count := 0
		for _, g := range Goroutines() {
			if strings.HasSuffix(g.Top, "leaktest.blockUntil") {
				count += g.Count
			}
		}
		if count >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Goroutines lists %d goroutines in blockUntil, want at least %d", count, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := allStacks(); len(d) <= 1<<16 {
		t.Fatalf("the dump of %d goroutines is %d bytes: not larger than the first buffer", n, len(d))
	}
}

// TestGroupStacksOrdersLargestGroupsFirstThenByFirstID: the report reads
// from the largest group down, and groups of one size come in the order of
// their first goroutine, whatever order the map of groups gives.
func TestGroupStacksOrdersLargestGroupsFirstThenByFirstID(t *testing.T) {
	var b strings.Builder
	for _, g := range []struct {
		fn  string
		ids []int
	}{
		{"a", []int{20}},
		{"b", []int{30, 5, 6}},
		{"c", []int{3}},
		{"d", []int{41, 40}},
		{"e", []int{10}},
	} {
		for _, id := range g.ids {
			fmt.Fprintf(&b, "goroutine %d [select]:\nexample.com/p.%s()\n\t/src/p.go:1 +0x1\n\n", id, g.fn)
		}
	}
	want := []string{"example.com/p.b", "example.com/p.d", "example.com/p.c", "example.com/p.e", "example.com/p.a"}
	for range 5 { // the groups come out of a map: try more than one order
		var got []string
		for _, g := range groupStacks([]byte(b.String()), nil) {
			got = append(got, g.Top)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("groups %q, want %q", got, want)
		}
	}
}

// TestShortStackCutsOnlyPastMaxFrames: a stack of maxFrames frames and its
// creator is shown whole; one frame more is cut to maxFrames, "..." and the
// creator.
func TestShortStackCutsOnlyPastMaxFrames(t *testing.T) {
	stack := func(frames int) string {
		var lines []string
		for i := range frames {
			lines = append(lines, "f"+strconv.Itoa(i)+"(...)", "\tfile.go:"+strconv.Itoa(i))
		}
		return strings.Join(append(lines, "created by g", "\tg.go:1"), "\n")
	}
	if s := stack(maxFrames); shortStack(s) != s {
		t.Errorf("a stack of %d frames changed:\n%s", maxFrames, shortStack(s))
	}
	got := strings.Split(shortStack(stack(maxFrames+1)), "\n")
	want := append(strings.Split(stack(maxFrames), "\n")[:2*maxFrames], "...", "created by g", "\tg.go:1")
	if !slices.Equal(got, want) {
		t.Errorf("a stack of %d frames cut to:\n%s\nwant:\n%s", maxFrames+1, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
