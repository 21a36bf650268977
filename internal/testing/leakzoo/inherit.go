package leakzoo

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"syscall"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// InheritedSocket is a client whose dialer leaves its socket without
// close-on-exec, as a library that makes its own sockets without
// SOCK_CLOEXEC does (ishidawataru/sctp#83; tenzir/tenzir#3998: children
// started through a shell kept the parent's TCP sockets), and that starts
// a child process while the channel is connected. The child inherits the
// socket: when the client closes the channel, the connection stays
// ESTABLISHED, and the backend keeps serving it, for as long as the child
// lives. The soak cannot provoke it in a user's client (its channels dial
// with the soak's own dialer, whose sockets are close-on-exec, and its exec
// fault checks that no child holds one); leaktest sees it through the
// connection the other process holds.
const InheritedSocket = "leakzoo_inherited_socket"

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
