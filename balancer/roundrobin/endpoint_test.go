package roundrobin

import (
	"testing"
	"unsafe"

	"google.golang.org/grpc/resolver"
)

// There is one endpoint per backend: BenchmarkMemoryPolicy counts every byte
// of it against grpc's round_robin. 128 bytes is a malloc size class.
func TestEndpointSize(t *testing.T) {
	if got := unsafe.Sizeof(endpoint{}); got > 128 {
		t.Errorf("endpoint is %d bytes, want at most 128", got)
	}
}

func TestKeyOf(t *testing.T) {
	ep := func(addrs ...string) resolver.Endpoint {
		e := resolver.Endpoint{}
		for _, a := range addrs {
			e.Addresses = append(e.Addresses, resolver.Address{Addr: a})
		}
		return e
	}
	same := [][2]resolver.Endpoint{
		{ep("a:1"), ep("a:1")},
		{ep("a:1", "b:1"), ep("b:1", "a:1")},
		{ep("a:1", "a:1", "b:1"), ep("a:1", "b:1", "a:1")},
		{ep("\x00s"), ep("\x00s")},
		{ep(), ep()},
	}
	for _, p := range same {
		if keyOf(p[0]) != keyOf(p[1]) {
			t.Errorf("keyOf(%q) = %q, keyOf(%q) = %q: want equal", p[0].Addresses, keyOf(p[0]), p[1].Addresses, keyOf(p[1]))
		}
	}
	// Every one of these is a different endpoint, including addresses that
	// look like the encoded keys of the others.
	distinct := []resolver.Endpoint{
		ep(), ep(""), ep("", ""), ep("a:1"), ep("b:1"), ep("a:1", "b:1"), ep("a:1", "a:1", "b:1"),
		ep("a:1 b:1"), ep("\x00"), ep("\x00s"), ep("\x00sa:1"), ep("\x00m"),
		ep("\x00x"), ep(keyString(ep("\x00x"))), ep(keyString(ep("a:1", "b:1"))),
	}
	seen := map[endpointKey]int{}
	for i, e := range distinct {
		k := keyOf(e)
		if j, ok := seen[k]; ok {
			t.Errorf("keyOf(%q) = keyOf(%q) = %q", e.Addresses, distinct[j].Addresses, k)
		}
		seen[k] = i
	}
}

func keyString(e resolver.Endpoint) string { return string(keyOf(e)) }
