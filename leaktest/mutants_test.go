package leaktest

import (
	"encoding/binary"
	"strings"
	"testing"
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
