package leaktest

import (
	"bytes"
	"cmp"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// GoroutineGroup is a set of goroutines with the same stack: goleak lists
// each leaked goroutine on its own, hundreds of identical ones for a leak
// per connection; a group reads in a line.
type GoroutineGroup struct {
	Count int    // goroutines with this stack
	State string // what they wait on: "select", "chan receive", ...
	// Top is the function on top of the stack, CreatedBy the function
	// whose go statement started them, and At the file:line of that
	// statement ("" for the main goroutine).
	Top, CreatedBy, At string
	// Stack is the stack without argument values, offsets and goroutine
	// ids, one frame a line pair (function, then tab-indented file:line).
	Stack string
	IDs   []int // the goroutines' ids, ascending
}

// Goroutines returns every goroutine of the process grouped by stack, the
// largest groups first.
func Goroutines() []GoroutineGroup { return groupStacks(allStacks(), nil) }

func allStacks() []byte {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

var (
	headerRE = regexp.MustCompile(`^goroutine (\d+) \[([^\]]*)\]:$`)
	argsRE   = regexp.MustCompile(`\((0x[0-9a-f]+|\.\.\.|, |0x[0-9a-f]+\?|\{[^}]*\})*\)$`)
	offRE    = regexp.MustCompile(` \+0x[0-9a-f]+$`)
	inGoRE   = regexp.MustCompile(` in goroutine \d+$`)
	waitRE   = regexp.MustCompile(`, \d+ minutes?$|, locked to thread$`)
)

// groupStacks groups the goroutines of a runtime.Stack dump, keeping only
// the ids in keep (all of them if keep is nil).
func groupStacks(dump []byte, keep map[int]bool) []GoroutineGroup {
	byKey := map[string]*GoroutineGroup{}
	for block := range bytes.SplitSeq(dump, []byte("\n\n")) {
		lines := strings.Split(strings.TrimSpace(string(block)), "\n")
		m := headerRE.FindStringSubmatch(lines[0])
		if m == nil {
			continue
		}
		id, _ := strconv.Atoi(m[1])
		if keep != nil && !keep[id] {
			continue
		}
		g := GoroutineGroup{State: waitRE.ReplaceAllString(m[2], "")}
		var stack []string
		for i := 1; i < len(lines); i++ {
			l := lines[i]
			if strings.HasPrefix(l, "\t") {
				l = "\t" + offRE.ReplaceAllString(strings.TrimSpace(l), "")
				if g.CreatedBy != "" && g.At == "" {
					g.At = strings.TrimSpace(l)
				}
			} else if fn, ok := strings.CutPrefix(l, "created by "); ok {
				g.CreatedBy = inGoRE.ReplaceAllString(fn, "")
				l = "created by " + g.CreatedBy
			} else {
				l = argsRE.ReplaceAllString(l, "(...)")
				if g.Top == "" {
					g.Top = strings.TrimSuffix(l, "(...)")
				}
			}
			stack = append(stack, l)
		}
		g.Stack = strings.Join(stack, "\n")
		key := g.State + "\n" + g.Stack
		if prev, ok := byKey[key]; ok {
			prev.Count++
			prev.IDs = append(prev.IDs, id)
			continue
		}
		g.Count, g.IDs = 1, []int{id}
		byKey[key] = &g
	}
	out := make([]GoroutineGroup, 0, len(byKey))
	for _, g := range byKey {
		slices.Sort(g.IDs)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b GoroutineGroup) int {
		return cmp.Or(b.Count-a.Count, a.IDs[0]-b.IDs[0])
	})
	return out
}

// leakedIDsRE finds the goroutines goleak reported.
var leakedIDsRE = regexp.MustCompile(`Goroutine (\d+) in state`)

// leakedGroups groups the goroutines goleak reported in err, read again
// from the process: the ones that ended meanwhile are left out.
func leakedGroups(err error) []GoroutineGroup {
	if err == nil {
		return nil
	}
	keep := map[int]bool{}
	for _, m := range leakedIDsRE.FindAllStringSubmatch(err.Error(), -1) {
		id, _ := strconv.Atoi(m[1])
		keep[id] = true
	}
	if len(keep) == 0 {
		return nil
	}
	return groupStacks(allStacks(), keep)
}

// Headline says in a line how many goroutines, doing what, started where:
// "3 goroutines in select on top of X, created by Y at file:line".
func (g GoroutineGroup) Headline() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(g.Count))
	if g.Count == 1 {
		b.WriteString(" goroutine")
	} else {
		b.WriteString(" goroutines")
	}
	b.WriteString(" in " + g.State + " in " + g.Top)
	if g.CreatedBy != "" {
		b.WriteString(", created by " + g.CreatedBy)
		if g.At != "" {
			b.WriteString(" at " + g.At)
		}
	}
	return b.String()
}
