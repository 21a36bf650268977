package procfs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func parseFile(t *testing.T, name string) []Socket {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	// The fixtures were printed by a little-endian kernel.
	socks, err := collect(data, binary.LittleEndian)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return socks
}

// collect returns the sockets parseNetTCP yields and the error that ends
// them, if any.
func collect(data []byte, order binary.ByteOrder) ([]Socket, error) {
	var out []Socket
	for s, err := range parseNetTCP(data, order) {
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

func sock(inode uint64, local, remote string, state TCPState) Socket {
	return Socket{Inode: inode, Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote), State: state}
}

func TestParseNetTCPv4(t *testing.T) {
	got := parseFile(t, "testdata/tcp")
	want := []Socket{
		sock(40001, "127.0.0.1:50051", "0.0.0.0:0", TCPListen),
		sock(40002, "127.0.0.1:41394", "127.0.0.1:50051", TCPEstablished),
		sock(40003, "127.0.0.1:50051", "127.0.0.1:41394", TCPEstablished),
		sock(0, "127.0.0.1:41396", "127.0.0.1:50051", TCPTimeWait),
		sock(40005, "10.0.2.15:54321", "192.168.1.20:443", TCPCloseWait),
		sock(40006, "127.0.0.1:41398", "127.0.0.1:50051", TCPSynSent),
	}
	if !slices.Equal(got, want) {
		t.Errorf("parse testdata/tcp:\n got %v\nwant %v", got, want)
	}
}

func TestParseNetTCPv6(t *testing.T) {
	got := parseFile(t, "testdata/tcp6")
	want := []Socket{
		sock(50001, "[::]:50051", "[::]:0", TCPListen),
		sock(50002, "[::1]:45506", "[::1]:50051", TCPEstablished),
		// v4-mapped addresses come out as IPv4, as sockowner and net.Conn see them.
		sock(50003, "127.0.0.1:50051", "127.0.0.1:45508", TCPEstablished),
		// Each 32-bit group is a little-endian word: a parser that reverses
		// all 16 bytes, or none, gets this one wrong.
		sock(50004, "[2001:db8:85a3::8a2e:370:7334]:443", "[2001:db8::1]:54321", TCPFinWait1),
		sock(0, "127.0.0.1:45510", "127.0.0.1:50051", TCPTimeWait),
	}
	if !slices.Equal(got, want) {
		t.Errorf("parse testdata/tcp6:\n got %v\nwant %v", got, want)
	}
	for _, s := range got {
		if s.Local.Addr().Is4In6() || s.Remote.Addr().Is4In6() {
			t.Errorf("%v: v4-mapped address not unmapped", s)
		}
	}
}

func TestParseNetTCPBigEndianHost(t *testing.T) {
	// A big-endian kernel prints the same words in network order.
	data := []byte("   0: 7F000001:C383 7F000001:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 7 1\n" +
		"   1: 20010DB885A3000000008A2E03707334:01BB 20010DB8000000000000000000000001:D431 01 00000000:00000000 00:00000000 00000000  1000        0 8 1\n")
	got, err := collect(data, binary.BigEndian)
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		sock(7, "127.0.0.1:50051", "127.0.0.1:41394", TCPEstablished),
		sock(8, "[2001:db8:85a3::8a2e:370:7334]:443", "[2001:db8::1]:54321", TCPEstablished),
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// TestParseNetTCPNamesTheBadLine: a line that is not a socket line fails the
// parse with its line number and what is wrong, so that a leak check fails
// instead of passing with sockets missing. Only the header and blank lines
// are skipped.
func TestParseNetTCPNamesTheBadLine(t *testing.T) {
	data := mustRead(t, "testdata/tcp_malformed")
	got, err := collect(data, binary.LittleEndian)
	want := []Socket{sock(40003, "127.0.0.1:50051", "127.0.0.1:41394", TCPEstablished)}
	if !slices.Equal(got, want) || err == nil || !strings.HasPrefix(err.Error(), `line 4: not a socket line: fewer than 10 fields: "   1:"`) {
		t.Fatalf("parse testdata/tcp_malformed: %v, %v; want the first socket, then an error for line 4", got, err)
	}
	n := 0
	if err := scanNetTCP(bytes.NewReader(data), binary.LittleEndian, func(Socket) bool { n++; return true }); n != 1 || err == nil || err.Error() != "line 4: not a socket line: fewer than 10 fields: \"   1:\"" {
		t.Fatalf("scanNetTCP: %d sockets, error %v", n, err)
	}

	// Each bad line of the fixture, on its own after the header.
	lines := strings.Split(string(data), "\n")
	header := lines[0] + "\n"
	for _, tc := range []struct {
		line int // in the fixture, 1-based
		why  string
	}{
		{4, "not a socket line: fewer than 10 fields"},
		{5, "not a socket line: fewer than 10 fields"},
		{6, "bad local address"},
		{7, "bad local address"},
		{8, "bad local address"},
		{9, "bad local address"},
		{10, "bad state: want two hex digits"},
		{11, "bad state: want two hex digits"},
		{12, "bad inode"},
		{13, "bad inode"},
		{14, "local and remote addresses of different families"},
		{15, "bad remote address"},
		{16, `not a socket line: the first field is not "N:"`},
		{17, "not a socket line: fewer than 10 fields"},
		{18, "not a socket line: fewer than 10 fields"},
	} {
		_, err := collect([]byte(header+lines[tc.line-1]+"\n"), binary.LittleEndian)
		if err == nil || !strings.HasPrefix(err.Error(), "line 2: "+tc.why+": ") {
			t.Errorf("fixture line %d %q: error %v, want %q", tc.line, lines[tc.line-1], err, tc.why)
		}
	}
	// The last line, without a newline, is a socket.
	if got, err := collect([]byte(header+lines[len(lines)-1]), binary.LittleEndian); err != nil || len(got) != 1 || got[0].Inode != 40004 {
		t.Errorf("the fixture's last line: %v, %v", got, err)
	}
}

func TestParseNetTCPQuotesLongLinesShort(t *testing.T) {
	long := "   0: " + strings.Repeat("Z", 500) + " x x x x x x x x x\n"
	_, err := collect([]byte(long), binary.LittleEndian)
	if err == nil || len(err.Error()) > 200 || !strings.HasSuffix(err.Error(), `..."`) {
		t.Fatalf("error for a 500-byte line: %v", err)
	}
}

func TestParseNetTCPStopsWhenAsked(t *testing.T) {
	n := 0
	for range parseNetTCP(mustRead(t, "testdata/tcp"), binary.LittleEndian) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("ranged over %d sockets after break, want 1", n)
	}
}

// The kernel writes its tables as they are read: once every socket is
// found, scanNetTCP must not read on.
func TestScanNetTCPStopsReading(t *testing.T) {
	errUnread := errors.New("read past the sockets that were wanted")
	src := func() io.Reader {
		return io.MultiReader(bytes.NewReader(mustRead(t, "testdata/tcp")), iotest.ErrReader(errUnread))
	}
	n := 0
	if err := scanNetTCP(src(), binary.LittleEndian, func(Socket) bool { n++; return n < 2 }); err != nil || n != 2 {
		t.Errorf("stopping after 2 sockets: got %d sockets and error %v, want 2 and nil", n, err)
	}
	n = 0
	if err := scanNetTCP(src(), binary.LittleEndian, func(Socket) bool { n++; return true }); !errors.Is(err, errUnread) || n != 6 {
		t.Errorf("reading on: got %d sockets and error %v, want 6 and the reader's error", n, err)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestTCPStateString(t *testing.T) {
	for s, want := range map[TCPState]string{
		TCPEstablished: "ESTABLISHED",
		TCPCloseWait:   "CLOSE_WAIT",
		TCPListen:      "LISTEN",
		TCPNewSynRecv:  "NEW_SYN_RECV",
		0:              "TCPState(0x00)",
		0x42:           "TCPState(0x42)",
	} {
		if got := s.String(); got != want {
			t.Errorf("TCPState(%d).String() = %q, want %q", uint8(s), got, want)
		}
	}
}

// formatLine prints s the way the kernel does on a host with byte order
// order.
func formatLine(s Socket, order binary.ByteOrder) string {
	addr := func(ap netip.AddrPort, v6 bool) string {
		a := ap.Addr()
		if v6 {
			a = netip.AddrFrom16(a.As16())
		}
		raw := a.AsSlice()
		var b strings.Builder
		for i := 0; i < len(raw); i += 4 {
			fmt.Fprintf(&b, "%08X", order.Uint32(raw[i:]))
		}
		fmt.Fprintf(&b, ":%04X", ap.Port())
		return b.String()
	}
	v6 := !s.Local.Addr().Is4() || !s.Remote.Addr().Is4()
	return fmt.Sprintf("%4d: %s %s %02X 00000000:00000000 00:00000000 00000000  1000        0 %d 1 0000000000000000 100 0 0 10 0\n",
		0, addr(s.Local, v6), addr(s.Remote, v6), uint8(s.State), s.Inode)
}

func FuzzParseNetTCP(f *testing.F) {
	for _, name := range []string{"testdata/tcp", "testdata/tcp6", "testdata/tcp_malformed"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			socks, err := collect(data, order)
			for _, s := range socks {
				if !s.Local.IsValid() || !s.Remote.IsValid() {
					t.Fatalf("invalid address in %+v", s)
				}
				if s.Local.Addr().Is4In6() || s.Remote.Addr().Is4In6() || s.Local.Addr().Zone() != "" {
					t.Fatalf("address not normalised in %+v", s)
				}
				// What was parsed prints back to a line that parses the same.
				again, err := collect([]byte(formatLine(s, order)), order)
				if err != nil || len(again) != 1 || again[0] != s {
					t.Fatalf("%+v printed as %q parses as %+v, %v", s, formatLine(s, order), again, err)
				}
			}
			// A bad line is a clear error: its number in the input, what is
			// wrong, the line itself.
			var ne *netTCPError
			if err != nil {
				if !errors.As(err, &ne) || ne.Why == "" || ne.Line < 1 || ne.Line > bytes.Count(data, []byte("\n"))+1 {
					t.Fatalf("error %v: want a *netTCPError naming a line of the input", err)
				}
				if !strings.HasPrefix(err.Error(), fmt.Sprintf("line %d: %s: ", ne.Line, ne.Why)) {
					t.Fatalf("error message %q", err)
				}
			}
			// The reader the leak checks use agrees, unless a line is too
			// long for its buffer.
			var scanned []Socket
			serr := scanNetTCP(bytes.NewReader(data), order, func(s Socket) bool { scanned = append(scanned, s); return true })
			if errors.Is(serr, bufio.ErrTooLong) {
				continue
			}
			var sne *netTCPError
			if !slices.Equal(scanned, socks) || (err == nil) != (serr == nil) || (err != nil && (!errors.As(serr, &sne) || sne.Line != ne.Line || sne.Why != ne.Why)) {
				t.Fatalf("scanNetTCP: %v, %v; parseNetTCP: %v, %v", scanned, serr, socks, err)
			}
		}
	})
}

func FuzzNetTCPAddressRoundTrip(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1}, []byte{127, 0, 0, 1}, uint16(50051), uint16(41394), uint8(1), uint64(40002))
	f.Add(netip.MustParseAddr("2001:db8:85a3::8a2e:370:7334").AsSlice(), netip.MustParseAddr("::1").AsSlice(), uint16(443), uint16(1), uint8(4), uint64(1))
	f.Add(netip.MustParseAddr("::ffff:127.0.0.1").AsSlice(), netip.MustParseAddr("::ffff:10.0.0.1").AsSlice(), uint16(0), uint16(65535), uint8(10), uint64(1<<63))
	f.Fuzz(func(t *testing.T, local, remote []byte, lport, rport uint16, state uint8, inode uint64) {
		l, ok1 := netip.AddrFromSlice(local)
		r, ok2 := netip.AddrFromSlice(remote)
		if !ok1 || !ok2 || l.Is4() != r.Is4() {
			return
		}
		want := Socket{Inode: inode, Local: netip.AddrPortFrom(l.Unmap(), lport), Remote: netip.AddrPortFrom(r.Unmap(), rport), State: TCPState(state)}
		for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			// Print the raw (possibly v4-mapped) addresses, as tcp6 does.
			raw := Socket{Inode: inode, Local: netip.AddrPortFrom(l, lport), Remote: netip.AddrPortFrom(r, rport), State: TCPState(state)}
			line := formatLine(raw, order)
			got, err := collect([]byte(line), order)
			if err != nil || len(got) != 1 || got[0] != want {
				t.Fatalf("%q parsed as %v, want %v", line, got, want)
			}
		}
	})
}

// TestTCPStateStringPastTheTable: the first state number past the kernel's
// names prints as a number, without reading past the table.
func TestTCPStateStringPastTheTable(t *testing.T) {
	past := TCPState(len(stateNames))
	if got := past.String(); got != "TCPState(0x0D)" {
		t.Fatalf("TCPState(%d).String() = %q", uint8(past), got)
	}
}

// TestBadLinesAreQuotedWholeUpToTheLimit: an error quotes a bad line whole
// when it fits, and cut short with "..." only when it does not.
func TestBadLinesAreQuotedWholeUpToTheLimit(t *testing.T) {
	line := "   0: " + strings.Repeat("Z", maxQuoted-6)
	_, err := collect([]byte(line), binary.LittleEndian)
	if err == nil || strings.Contains(err.Error(), "...") || !strings.Contains(err.Error(), line) {
		t.Fatalf("error for a %d-byte line: %v", len(line), err)
	}
}

// parseHex and parseDec at the edges of uint64: 16 hex digits and the
// largest decimal parse, one more does not.
func TestParseNumbersAtTheirLimits(t *testing.T) {
	if v, ok := parseHex([]byte("FFFFFFFFFFFFFFFF")); !ok || v != ^uint64(0) {
		t.Errorf("parseHex of 16 digits = %d, %v", v, ok)
	}
	if _, ok := parseHex([]byte("1FFFFFFFFFFFFFFFF")); ok {
		t.Error("parseHex accepted 17 digits")
	}
	if v, ok := parseDec([]byte("18446744073709551615")); !ok || v != ^uint64(0) {
		t.Errorf("parseDec of the largest uint64 = %d, %v", v, ok)
	}
	if v, ok := parseDec([]byte("18446744073709551610")); !ok || v != ^uint64(0)-5 {
		t.Errorf("parseDec near the largest uint64 = %d, %v", v, ok)
	}
	if _, ok := parseDec([]byte("18446744073709551616")); ok {
		t.Error("parseDec accepted a number past uint64")
	}
}

// TestParseNetTCPSkipsWhitespaceLines: a line of spaces, tabs or a lone
// carriage return is blank, skipped like an empty one, not a socket line
// with fields missing. Synthetic table text: the kernel does not print
// such lines, but a table passed through a tool that pads or converts line
// ends may hold them.
func TestParseNetTCPSkipsWhitespaceLines(t *testing.T) {
	const socket = "   0: 0100007F:C383 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 40003 1 0\n"
	data := []byte("  \n" + socket + "\t \r\n\r\n")
	got, err := collect(data, binary.LittleEndian)
	want := []Socket{sock(40003, "127.0.0.1:50051", "127.0.0.1:41394", TCPEstablished)}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("whitespace lines around a socket: %v, %v; want %v and no error", got, err, want)
	}
}
