package sockowner

import (
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns both ends of a TCP connection on loopback.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	lis, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	c, err := net.DialTCP("tcp", nil, lis.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	s, err := lis.AcceptTCP()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c, s
}

// TestResetByPeerTellsAResetFromAFIN: the state a reader can ask for once
// the reset's error was taken by a write, as it is when grpc's writer and
// reader race on one socket.
func TestResetByPeerTellsAResetFromAFIN(t *testing.T) {
	c, s := tcpPair(t)
	defer c.Close()
	if ResetByPeer(c) {
		t.Fatal("an open connection reads as reset")
	}
	s.SetLinger(0)
	s.Close() // RST
	// The writer takes the error, as grpc's loopy writer can.
	deadline := time.Now().Add(5 * time.Second)
	for _, err := c.Write([]byte("x")); err == nil && time.Now().Before(deadline); _, err = c.Write([]byte("x")) {
		time.Sleep(time.Millisecond)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after the writer took the reset: %d, %v; want the EOF that hides it", n, err)
	}
	if !ResetByPeer(c) {
		t.Error("a reset connection does not read as reset")
	}

	c2, s2 := tcpPair(t)
	defer c2.Close()
	s2.Close() // FIN
	if n, err := c2.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after FIN: %d, %v", n, err)
	}
	if ResetByPeer(c2) {
		t.Error("a connection the peer closed with a FIN reads as reset")
	}
}
