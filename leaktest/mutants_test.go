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
