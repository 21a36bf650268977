package soak

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/leakproof/leakproof/internal/procfs"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"google.golang.org/grpc"
)

// The exec fault: a server that passed its accepted sockets to worker
// processes hung its clients, because a socket a child inherited stays
// open (and its connection ESTABLISHED) after the parent closes it. The
// soak starts short-lived child processes while channels dial, use and
// close connections, and checks:
//
//   - no child holds a socket of the process (from /proc/<pid>/fd): the
//     client's and the backends' sockets are opened close-on-exec;
//   - once the phase's channels are closed, no TCP connection to any
//     backend is ESTABLISHED in the network namespace unless the process
//     itself holds it (from /proc/net/tcp, which lists every process's
//     sockets): a socket kept alive by another process shows there.
const (
	execEvery    = 25 * time.Millisecond
	execLifetime = 150 * time.Millisecond
	execChannels = 2
)

// execStats is what an exec phase saw.
type execStats struct {
	children  int
	inherited []string // sockets found in a child, the first maxListed
	stray     []string // connections to a backend held by another process
	channels  int
}

// inheritedSockets returns the sockets child pid holds, each named with
// its owner in this process (owner returns "" for a socket that is not
// ours). A child started by the soak holds none.
func inheritedSockets(pid int, owner func(ino uint64) string) ([]string, error) {
	fds, err := procfs.FDsOf(pid)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, fd := range slices.Sorted(maps.Keys(fds)) {
		target := fds[fd]
		if ino, ok := procfs.SocketInode(target); ok {
			who := owner(ino)
			if who == "" {
				who = "not ours"
			}
			out = append(out, fmt.Sprintf("child %d fd %d: %s (%s)", pid, fd, target, who))
		}
	}
	return out, nil
}

// strayConnections returns the ESTABLISHED TCP connections to one of
// backends in the network namespace whose socket this process does not
// hold.
func strayConnections(backends map[netip.AddrPort]string) ([]string, error) {
	stray, err := procfs.HeldElsewhere(func(a netip.AddrPort) bool { _, ok := backends[a]; return ok })
	if err != nil {
		return nil, err
	}
	inodes := map[uint64]struct{}{}
	for ino := range stray {
		inodes[ino] = struct{}{}
	}
	holders := procfs.Holders(inodes)
	var out []string
	for _, s := range stray {
		who := "another process"
		if h, ok := holders[s.Inode]; ok {
			who = h.String()
		}
		out = append(out, fmt.Sprintf("%s (to backend %s, inode %d) held by %s", s, backends[s.Remote], s.Inode, who))
	}
	slices.Sort(out)
	return out, nil
}

// socketOwner names the owner of a socket of this process by inode: a
// channel of the run or a backend; "" if neither.
func (r *runner) socketOwner(ino uint64) string {
	if ch, ok := r.socks.byInode(ino); ok {
		return "channel " + ch.name
	}
	for i, b := range r.backends {
		if slices.Contains(b.Inodes(), ino) {
			return backendOwner(r.info[i].Name)
		}
	}
	return ""
}

// execChildren starts child processes one after another until pctx ends,
// while execChannels channels dial, use and close connections, then checks
// the namespace for connections kept alive elsewhere.
func (r *runner) execChildren(pctx context.Context, p *phaseRun) error {
	exe, _, env, err := childCommand("idle", execLifetime)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	st := &execStats{}
	note := func(list *[]string, msgs ...string) {
		mu.Lock()
		for _, m := range msgs {
			if len(*list) < maxListed {
				*list = append(*list, m)
			}
		}
		mu.Unlock()
	}
	r.mu.Lock()
	phase := len(r.phases)
	r.mu.Unlock()
	for i := range execChannels {
		wg.Go(func() {
			for n := 0; pctx.Err() == nil; n++ {
				c, err := r.dial(fmt.Sprintf("exec-%d-%d-%d", phase, i, n), kindChurn, r.cfg.channelServiceConfig(), r.baseState(), nil, &r.main.stats)
				if err != nil {
					r.problem("soak: exec: %v", err)
					return
				}
				ctx, cancel := context.WithTimeout(r.loadCtx, churnRPCTimout)
				_, err = c.echo.Echo(ctx, &echov1.EchoRequest{Message: "exec"}, grpc.WaitForReady(true))
				cancel()
				if r.loadCtx.Err() == nil {
					c.count(err, false)
				}
				r.closeChannel(c)
				mu.Lock()
				st.channels++
				mu.Unlock()
				sleepCtx(pctx, churnPace)
			}
		})
	}
	var children sync.WaitGroup
	for sleepCtx(pctx, execEvery) {
		cmd := exec.Command(exe)
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			r.problem("soak: exec: starting a child: %v", err)
			break
		}
		mu.Lock()
		st.children++
		mu.Unlock()
		if found, err := inheritedSockets(cmd.Process.Pid, r.socketOwner); err == nil {
			note(&st.inherited, found...)
		}
		children.Go(func() { _ = cmd.Wait() })
	}
	wg.Wait()
	children.Wait()
	// The phase's channels are closed: give their sockets the bound to go,
	// then look at the whole namespace.
	deadline := time.Now().Add(r.cfg.bound())
	for {
		stray, err := strayConnections(r.names)
		if err != nil {
			return fmt.Errorf("exec: reading the namespace's sockets: %w", err)
		}
		if len(stray) == 0 || time.Now().After(deadline) {
			note(&st.stray, stray...)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.mu.Lock()
	p.exec = st
	r.mu.Unlock()
	var bad []string
	if len(st.inherited) > 0 {
		bad = append(bad, "a child process holds a socket: "+strings.Join(st.inherited, "; "))
	}
	if len(st.stray) > 0 {
		bad = append(bad, "after the channels closed, connections stay ESTABLISHED: "+strings.Join(st.stray, "; "))
	}
	if len(bad) > 0 {
		return fmt.Errorf("exec: %s", strings.Join(bad, "; "))
	}
	return nil
}
