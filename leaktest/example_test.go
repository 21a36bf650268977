//go:build linux

package leaktest_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/leaktest"
)

// printT stands in for the *testing.T of a real test: it prints the first
// line of each failure.
type printT struct{}

func (printT) Helper() {}

func (printT) Errorf(format string, args ...any) {
	msg, _, _ := strings.Cut(fmt.Sprintf(format, args...), "\n")
	fmt.Println(msg)
}

func ExampleCheck() {
	t := printT{} // in a test: the *testing.T
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lis.Close()
	backend := lis.Addr().String()

	// In a test: defer leaktest.Check(t, leaktest.Backends(backend))()
	verify := leaktest.Check(t, leaktest.Backends(backend))

	conn, err := net.Dial("tcp", backend)
	if err != nil {
		fmt.Println(err)
		return
	}
	peer, err := lis.Accept()
	if err != nil {
		fmt.Println(err)
		return
	}
	conn.Close()
	peer.Close()

	verify() // reports nothing: the connection is gone
	fmt.Println("clean")
	// Output: clean
}

func ExampleVerifyNone() {
	t := printT{} // in a test: the *testing.T
	base, err := leaktest.Take()
	if err != nil {
		fmt.Println(err)
		return
	}

	f, err := os.Open(os.DevNull) // opened and forgotten
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()

	leaktest.VerifyNone(t, base, leaktest.Deadline(100*time.Millisecond))
	// Output: leaktest: 1 file descriptor(s) leaked: still open after 100ms, not open at the baseline:
}

func ExampleSocketsTo() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lis.Close()
	backend := lis.Addr().String()

	conn, err := net.Dial("tcp", backend)
	if err != nil {
		fmt.Println(err)
		return
	}
	peer, err := lis.Accept()
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := leaktest.SocketsTo(backend)
	fmt.Println("while open:", n, err)

	conn.Close()
	peer.Close()
	n, err = leaktest.SocketsTo(backend)
	fmt.Println("after Close:", n, err)
	// Output:
	// while open: 1 <nil>
	// after Close: 0 <nil>
}

// VerifyTestMain is the whole of TestMain: it runs the tests, checks, and
// exits. (This example is compiled, not run, since it would exit.)
func ExampleVerifyTestMain() {
	var m *testing.M // what TestMain receives
	leaktest.VerifyTestMain(m, leaktest.Deadline(10*time.Second))
}
