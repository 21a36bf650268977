// Package termsafe writes strings that come from outside the process — keys,
// holders, targets and addresses chosen by resolvers and control planes — so
// that an escape sequence in one never reaches an operator's terminal. The
// trace's String methods and the leakproof command share it.
package termsafe

import (
	"strconv"
	"strings"
)

// Quote returns s as it is if every rune of it is printable and none is a
// space, a quote or a backslash, and Go-quoted otherwise.
func Quote(s string) string {
	for _, r := range s {
		if r == ' ' || r == '"' || r == '\\' || !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// Escape returns s with every rune that is not printable (ESC, newline, ...)
// written as its Go escape: for text that mixes our words with strings from
// outside, such as a problem's message.
func Escape(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r != ' ' && !strconv.IsPrint(r) }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == ' ' || strconv.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}
