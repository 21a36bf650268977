package leakzoo

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"sync/atomic"
	"syscall"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// InheritedSocket is a client whose dialer leaves its socket without
// close-on-exec, as a library that makes its own sockets without
// SOCK_CLOEXEC does (ishidawataru/sctp#83; tenzir/tenzir#3998: children
// started through a shell kept the parent's TCP sockets), and that starts
// a child process (a helper it shells out to) while the channel is
// connected. The child inherits the socket: when the client closes it (a
// removed backend, a closed channel), the connection stays ESTABLISHED,
// and the backend keeps serving it, for as long as the child lives.
const InheritedSocket = "leakzoo_inherited_socket"

// spawnEvery is how many calls the application makes per helper process it
// starts; helperLife is how long a helper lives, in seconds: for as long,
// each keeps the connections it inherited, and a server that waits for a
// connection's preface (one the client closed while connecting) waits too.
const (
	spawnEvery = 100
	helperLife = "8"
)

func inheritedSocket() *App {
	h := &held{}
	var calls atomic.Int64
	return &App{
		Dialer:  inheritingDialer,
		Release: h.release,
		Load: func(ctx context.Context, cc *grpc.ClientConn) error {
			if calls.Add(1)%spawnEvery == 0 {
				child := exec.Command("sleep", helperLife)
				if err := child.Start(); err != nil {
					return fmt.Errorf("leakzoo: starting a helper: %w", err)
				}
				// Fire and forget, as a helper is started: the process
				// handle goes, only the pid is kept to end it.
				pid := child.Process.Pid
				_ = child.Process.Release()
				h.add(func() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					_, _ = syscall.Wait4(pid, nil, 0, nil)
				})
			}
			_, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: InheritedSocket})
			return err
		},
	}
}

// inheritingDialer dials TCP and clears the socket's close-on-exec flag:
// the bug.
func inheritingDialer(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			_, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETFD, 0)
			if errno != 0 {
				serr = errno
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return d.DialContext(ctx, "tcp", addr)
}

// InheritSocket dials addr with the inheriting dialer, makes one call,
// starts child (a command that outlives the channel, such as sleep 60),
// and closes the channel. It returns a release that ends the child.
func InheritSocket(ctx context.Context, addr string, child *exec.Cmd) (release func(), err error) {
	c, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(inheritingDialer))
	if err != nil {
		return nil, fmt.Errorf("leakzoo: %w", err)
	}
	defer c.Close()
	if _, err := echov1.NewEchoServiceClient(c).Echo(ctx, &echov1.EchoRequest{Message: InheritedSocket}); err != nil {
		return nil, fmt.Errorf("leakzoo: %w", err)
	}
	if err := child.Start(); err != nil {
		return nil, fmt.Errorf("leakzoo: starting a child: %w", err)
	}
	return func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	}, nil
}
