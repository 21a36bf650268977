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
		msgs = append(msgs, b.String())
	}
	if l.Goroutines != nil {
		msgs = append(msgs, fmt.Sprintf("leaktest: goroutines leaked after %v: %v", l.Deadline, l.Goroutines))
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
