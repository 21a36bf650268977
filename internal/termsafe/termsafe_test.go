package termsafe_test

import (
	"testing"

	"github.com/leakproof/leakproof/internal/termsafe"
)

func TestQuoteAndEscape(t *testing.T) {
	for _, c := range []struct{ in, quote, escape string }{
		{"127.0.0.1:443", "127.0.0.1:443", "127.0.0.1:443"},
		{"a b", `"a b"`, "a b"},
		{`say "x"`, `"say \"x\""`, `say "x"`},
		{"evil\x1b[2J\nhost", `"evil\x1b[2J\nhost"`, `evil\x1b[2J\nhost`},
		{"", "", ""},
	} {
		if got := termsafe.Quote(c.in); got != c.quote {
			t.Errorf("Quote(%q) = %s, want %s", c.in, got, c.quote)
		}
		if got := termsafe.Escape(c.in); got != c.escape {
			t.Errorf("Escape(%q) = %s, want %s", c.in, got, c.escape)
		}
	}
}
