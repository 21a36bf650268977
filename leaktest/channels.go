package leaktest

import (
	"fmt"
	"strings"
	"time"

	"github.com/leakproof/leakproof/internal/channelzview"
)

// Channel is a grpc channel (a *grpc.ClientConn) open when a check gave up
// that was not open at its baseline, as grpc's channelz registry describes
// it. leaktest turns channelz on in the test binary for this (as importing
// grpc's channelz service does): channels created before the package was
// initialized are not listed.
type Channel struct {
	Target  string    // the target it was created with
	Policy  string    // its load-balancing policy; "" once channelz's bounded trace dropped the event
	State   string    // its connectivity state
	Created time.Time // when it was created
	// Subchannels are its subchannels: address, state and open sockets,
	// as in "127.0.0.1:50051 READY, 1 socket".
	Subchannels []string
}

// channelIDs returns the ids of the channels open now.
func channelIDs() map[int64]bool {
	chans, err := channelzview.Channels()
	if err != nil {
		return nil
	}
	ids := make(map[int64]bool, len(chans))
	for _, c := range chans {
		ids[c.ID] = true
	}
	return ids
}

// newChannels returns the channels open now that were not open at base.
func newChannels(base map[int64]bool) []Channel {
	chans, err := channelzview.Channels()
	if err != nil {
		return nil
	}
	var out []Channel
	for _, c := range chans {
		if base[c.ID] {
			continue
		}
		ch := Channel{Target: c.Target, Policy: c.Policy, State: c.State, Created: c.Created}
		for _, sc := range c.Subchannels {
			ch.Subchannels = append(ch.Subchannels, fmt.Sprintf("%s %s, %d socket(s)", sc.Addr, sc.State, sc.Sockets))
		}
		out = append(out, ch)
	}
	return out
}

// String says what a user can act on: which channel was not closed.
func (c Channel) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "a grpc channel to %q was not closed (call Close on its *grpc.ClientConn): ", c.Target)
	if c.Policy != "" {
		fmt.Fprintf(&b, "policy %s, ", c.Policy)
	}
	fmt.Fprintf(&b, "%s", c.State)
	if !c.Created.IsZero() {
		fmt.Fprintf(&b, ", created at %s", c.Created.Format("15:04:05.000"))
	}
	switch len(c.Subchannels) {
	case 0:
		b.WriteString(", no subchannel")
	default:
		fmt.Fprintf(&b, ", %d subchannel(s): %s", len(c.Subchannels), strings.Join(c.Subchannels, "; "))
	}
	return b.String()
}
