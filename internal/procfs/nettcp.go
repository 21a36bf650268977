package procfs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"iter"
	"net/netip"
)

// Socket is a TCP socket as /proc/net/tcp or /proc/net/tcp6 describes it.
type Socket struct {
	Inode  uint64         // the inode in the "socket:[inode]" target of its descriptor
	Local  netip.AddrPort // normalised: IPv4-mapped IPv6 addresses are unmapped
	Remote netip.AddrPort // normalised like Local; 0.0.0.0:0 or [::]:0 while listening
	State  TCPState
}

// String formats s as "local -> remote STATE".
func (s Socket) String() string {
	return fmt.Sprintf("%v -> %v %v", s.Local, s.Remote, s.State)
}

// IsConnection reports whether s counts as a connection: listeners and
// sockets in TIME_WAIT (which no descriptor holds) do not.
func (s Socket) IsConnection() bool {
	return s.State != TCPListen && s.State != TCPTimeWait
}

// TCPState is the state of a TCP socket, numbered as the Linux kernel numbers
// it in /proc/net/tcp.
type TCPState uint8

// The TCP states, with the kernel's numbers.
const (
	TCPEstablished TCPState = 0x01 // ESTABLISHED
	TCPSynSent     TCPState = 0x02 // SYN_SENT
	TCPSynRecv     TCPState = 0x03 // SYN_RECV
	TCPFinWait1    TCPState = 0x04 // FIN_WAIT1
	TCPFinWait2    TCPState = 0x05 // FIN_WAIT2
	TCPTimeWait    TCPState = 0x06 // TIME_WAIT
	TCPClose       TCPState = 0x07 // CLOSE
	TCPCloseWait   TCPState = 0x08 // CLOSE_WAIT: the peer closed, this process has not
	TCPLastAck     TCPState = 0x09 // LAST_ACK
	TCPListen      TCPState = 0x0A // LISTEN
	TCPClosing     TCPState = 0x0B // CLOSING
	TCPNewSynRecv  TCPState = 0x0C // NEW_SYN_RECV
)

var stateNames = [...]string{
	TCPEstablished: "ESTABLISHED",
	TCPSynSent:     "SYN_SENT",
	TCPSynRecv:     "SYN_RECV",
	TCPFinWait1:    "FIN_WAIT1",
	TCPFinWait2:    "FIN_WAIT2",
	TCPTimeWait:    "TIME_WAIT",
	TCPClose:       "CLOSE",
	TCPCloseWait:   "CLOSE_WAIT",
	TCPLastAck:     "LAST_ACK",
	TCPListen:      "LISTEN",
	TCPClosing:     "CLOSING",
	TCPNewSynRecv:  "NEW_SYN_RECV",
}

// String returns the kernel's name for s, such as "ESTABLISHED".
func (s TCPState) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("TCPState(0x%02X)", uint8(s))
}

// parseNetTCP yields the sockets in the contents of /proc/net/tcp or
// /proc/net/tcp6. The header and blank lines are skipped; any other line that
// is not a socket line is an error naming the line and what is wrong with it,
// yielded once, after which the sequence ends. A table the parser cannot
// read must fail a leak check, not pass it with sockets missing.
//
// The kernel prints an IPv4 address as one 32-bit word and an IPv6 address as
// four, each word with %08X of its value in host byte order: on a
// little-endian host 127.0.0.1 reads 0100007F, and ::1 reads
// 00000000000000000000000001000000. order is the host's byte order
// (binary.NativeEndian for the running kernel's files). Ports are printed as
// plain numbers.
func parseNetTCP(data []byte, order binary.ByteOrder) iter.Seq2[Socket, error] {
	little := isLittle(order)
	return func(yield func(Socket, error) bool) {
		rest := data
		for n := 1; len(rest) > 0; n++ {
			line := rest
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line, rest = rest[:i], rest[i+1:]
			} else {
				rest = nil
			}
			s, ok, why := parseNetTCPLine(line, little)
			if why != "" {
				yield(Socket{}, lineError(n, line, why))
				return
			}
			if ok && !yield(s, nil) {
				return
			}
		}
	}
}

// scanNetTCP is parseNetTCP over a reader, for the kernel's files: it stops
// reading as soon as yield returns false.
func scanNetTCP(r io.Reader, order binary.ByteOrder, yield func(Socket) bool) error {
	little := isLittle(order)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		s, ok, why := parseNetTCPLine(sc.Bytes(), little)
		if why != "" {
			return lineError(n, sc.Bytes(), why)
		}
		if ok && !yield(s) {
			return nil
		}
	}
	return sc.Err()
}

// A netTCPError is a line of a TCP table that is not a socket line.
type netTCPError struct {
	Line int    // 1-based
	Why  string // what is wrong with it
	Text []byte // the line, cut short
}

func (e *netTCPError) Error() string { return fmt.Sprintf("line %d: %s: %q", e.Line, e.Why, e.Text) }

// maxQuoted bounds how much of a bad line an error quotes.
const maxQuoted = 120

func lineError(n int, line []byte, why string) error {
	text := bytes.Clone(line)
	if len(text) > maxQuoted {
		text = append(text[:maxQuoted], "..."...)
	}
	return &netTCPError{Line: n, Why: why, Text: text}
}

// A line reads, with the fields this parser uses numbered:
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
//	0:  0100007F:C383 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 40001 ...
//	[0] [1]           [2]           [3] [4]              [5]         [6]       [7]         [8] [9]
//
// parseNetTCPLine returns the socket and true for a socket line; false and
// no reason for the header or a blank line; and otherwise the reason the line
// is not a socket line. The reasons are constants: the parser allocates
// nothing, and an error is built only for a bad line.
func parseNetTCPLine(line []byte, little bool) (s Socket, ok bool, why string) {
	var f [10][]byte
	n := splitFields(line, f[:])
	switch {
	case n == 0:
		return Socket{}, false, ""
	case string(f[0]) == "sl":
		return Socket{}, false, "" // the header
	case n < len(f):
		return Socket{}, false, "not a socket line: fewer than 10 fields"
	}
	if sl := f[0]; len(sl) < 2 || sl[len(sl)-1] != ':' {
		return Socket{}, false, `not a socket line: the first field is not "N:"`
	}
	local, ok := parseAddrPort(f[1], little)
	if !ok {
		return Socket{}, false, "bad local address"
	}
	remote, ok := parseAddrPort(f[2], little)
	if !ok {
		return Socket{}, false, "bad remote address"
	}
	// Both addresses come from one table, so they have the same width.
	if len(f[1]) != len(f[2]) {
		return Socket{}, false, "local and remote addresses of different families"
	}
	state, ok := parseHex(f[3])
	if !ok || len(f[3]) != 2 {
		return Socket{}, false, "bad state: want two hex digits"
	}
	inode, ok := parseDec(f[9])
	if !ok {
		return Socket{}, false, "bad inode"
	}
	return Socket{Inode: inode, Local: local, Remote: remote, State: TCPState(state)}, true, ""
}

// splitFields stores the first len(out) space-separated fields of line in
// out and returns how many it found.
func splitFields(line []byte, out [][]byte) int {
	n := 0
	for i := 0; i < len(line) && n < len(out); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
			i++
		}
		start := i
		for i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' {
			i++
		}
		if i > start {
			out[n] = line[start:i]
			n++
		}
	}
	return n
}

// isLittle reports whether order is little-endian. The parser works on a
// bool rather than calling order for every word, which would make each
// address escape to the heap.
func isLittle(order binary.ByteOrder) bool {
	return order.Uint16([]byte{1, 0}) == 1
}

// parseAddrPort parses "0100007F:C383" (IPv4) or 32 hex digits, a colon and
// four hex digits (IPv6) into a normalised address. Each group of 8 digits is
// a 32-bit word printed in the host's byte order.
func parseAddrPort(b []byte, little bool) (netip.AddrPort, bool) {
	// 8 or 32 digits, the colon, 4 digits (i is -1 without a colon).
	i := bytes.IndexByte(b, ':')
	if i != 8 && i != 32 || len(b) != i+5 {
		return netip.AddrPort{}, false
	}
	hexIP := b[:i]
	port, ok := parseHex(b[i+1:])
	if !ok {
		return netip.AddrPort{}, false
	}
	var a [16]byte
	for k := 0; k < len(hexIP)/8; k++ {
		w, ok := parseHex(hexIP[8*k : 8*k+8])
		if !ok {
			return netip.AddrPort{}, false
		}
		if little {
			a[4*k], a[4*k+1], a[4*k+2], a[4*k+3] = byte(w), byte(w>>8), byte(w>>16), byte(w>>24)
		} else {
			a[4*k], a[4*k+1], a[4*k+2], a[4*k+3] = byte(w>>24), byte(w>>16), byte(w>>8), byte(w)
		}
	}
	var addr netip.Addr
	if len(hexIP) == 8 {
		addr = netip.AddrFrom4([4]byte(a[:4]))
	} else {
		addr = netip.AddrFrom16(a)
	}
	// Unmapped, as sockowner.Normalize and net.Conn have them; a parsed
	// address has no zone.
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), true
}

// parseHex parses up to 16 hex digits without allocating.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

// parseDec parses a decimal uint64 without allocating.
func parseDec(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (^uint64(0)-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}
