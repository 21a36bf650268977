package leaktest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

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

// TestFindWithoutDescriptors: a baseline that could not read descriptors
// because the platform has none to read (errors.ErrUnsupported, what Take
// returns outside Linux) checks goroutines alone without complaint, but a
// socket count asked for with Backends is an error; any other reason the
// baseline failed is an error either way. The baselines are built here by
// hand, since on Linux Take reads descriptors.
func TestFindWithoutDescriptors(t *testing.T) {
	unsupported := fmt.Errorf("leaktest: file descriptors and sockets: not supported on GOOS=plan9: %w", errors.ErrUnsupported)
	failed := errors.New("leaktest: list file descriptors: permission denied")
	for _, tc := range []struct {
		err       error
		backends  []string
		wantError bool
	}{
		{unsupported, nil, false},
		{unsupported, []string{"127.0.0.1:50051"}, true},
		{failed, nil, true},
		{failed, []string{"127.0.0.1:50051"}, true},
	} {
		base := &Snapshot{goroutines: goleak.IgnoreCurrent(), err: tc.err}
		l := Find(base, Deadline(50*time.Millisecond), Backends(tc.backends...))
		if got := l != nil && slices.Contains(l.Errors, tc.err); got != tc.wantError || (!tc.wantError && l != nil) {
			t.Errorf("baseline error %q, backends %v: Find = %+v; want the baseline's error: %v", tc.err, tc.backends, l, tc.wantError)
		}
	}
}
