package leaktest

import (
	"fmt"
	"strings"
)

// Messages renders l as Check and VerifyNone report it, one message per
// kind of leak: each error, the leaked descriptors, each backend's sockets,
// the goroutines. It is for people; code reads l's fields.
func (l *Leaks) Messages() []string {
	if l == nil {
		return nil
	}
	var msgs []string
	for _, err := range l.Errors {
		msgs = append(msgs, err.Error())
	}
	if len(l.FDs) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "leaktest: %d file descriptor(s) leaked: still open after %v, not open at the baseline:", len(l.FDs), l.Deadline)
		for _, f := range l.FDs {
			b.WriteString("\n\t" + f.String())
		}
		msgs = append(msgs, b.String())
	}
	for _, bs := range l.Backends {
		var b strings.Builder
		fmt.Fprintf(&b, "leaktest: %d socket(s) to backend %v after %v, want %d (the baseline):", bs.Now, bs.Backend, l.Deadline, bs.Baseline)
		for _, f := range bs.FDs {
			b.WriteString("\n\t" + f.String())
		}
		for _, h := range bs.Elsewhere {
			b.WriteString("\n\t" + h.String())
		}
		msgs = append(msgs, b.String())
	}
	for _, c := range l.Channels {
		msgs = append(msgs, "leaktest: "+c.String())
	}
	if l.Goroutines != nil {
		msgs = append(msgs, l.goroutineMessage())
	}
	return msgs
}

// Error joins l's messages, so that a *Leaks can be returned as an error.
func (l *Leaks) Error() string { return strings.Join(l.Messages(), "\n") }

// String formats f as a report line: a file's path, or a socket's addresses,
// state and owner.
func (f FD) String() string {
	line := fmt.Sprintf("fd %d -> %s", f.Num, f.Target)
	if f.Socket != nil {
		line += fmt.Sprintf(" tcp %v", *f.Socket)
		if f.Owner != nil {
			line += ", " + f.Owner.String()
		}
	}
	return line
}

// String names the subchannel, as in "owned by subchannel 3 (key ...)".
func (o Owner) String() string {
	return fmt.Sprintf("owned by subchannel %d (key %q, manager %d, target %q)", o.Subchannel, o.Key, o.Manager, o.Target)
}

// goroutineMessage lists the leaked goroutines grouped by stack; goleak's
// own report when none is still running to be grouped.
func (l *Leaks) goroutineMessage() string {
	if len(l.Groups) == 0 {
		return fmt.Sprintf("leaktest: goroutines leaked after %v: %v", l.Deadline, l.Goroutines)
	}
	n := 0
	for _, g := range l.Groups {
		n += g.Count
	}
	var b strings.Builder
	fmt.Fprintf(&b, "leaktest: %d goroutines leaked after %v, not running at the baseline, in %d group(s) by stack:", n, l.Deadline, len(l.Groups))
	for _, g := range l.Groups {
		b.WriteString("\n" + g.Headline() + ":\n\t" + strings.ReplaceAll(shortStack(g.Stack), "\n", "\n\t"))
	}
	return b.String()
}

// maxFrames bounds the frames a report shows per group: the top of the
// stack says what the goroutines wait on, the headline who started them.
const maxFrames = 8

// shortStack returns the first maxFrames frames of stack (a function line
// and a file line each) and the creator.
func shortStack(stack string) string {
	lines := strings.Split(stack, "\n")
	if len(lines) <= 2*maxFrames+2 {
		return stack
	}
	out := append(lines[:2*maxFrames:2*maxFrames], "...")
	return strings.Join(append(out, lines[len(lines)-2:]...), "\n")
}
