package subconn

import (
	"slices"
	"testing"

	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"
)

type kv struct{ a resolver.Address }

func (k *kv) keyAddress() resolver.Address { return k.a }

// TestKeyMapSameHostDifferentAttributes covers the rare path: several keys
// under one Addr+ServerName, removed in every order.
func TestKeyMapSameHostDifferentAttributes(t *testing.T) {
	mk := func(zone string) *kv {
		a := resolver.Address{Addr: "10.0.0.1:1"}
		if zone != "" {
			a.Attributes = attributes.New("zone", zone)
		}
		return &kv{a}
	}
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 0, 2}, {0, 2, 1}} {
		km := newKeyMap[*kv]()
		vals := []*kv{mk(""), mk("a"), mk("b")}
		for _, v := range vals {
			km.set(v.a, v)
		}
		km.set(vals[1].a, vals[1]) // replacing keeps the count
		if km.len() != 3 {
			t.Fatalf("len = %d, want 3", km.len())
		}
		left := slices.Clone(vals)
		for _, i := range order {
			v := vals[i]
			if got, ok := km.get(mk(map[int]string{0: "", 1: "a", 2: "b"}[i]).a); !ok || got != v {
				t.Fatalf("order %v: get before removing %d = %v, %v", order, i, got, ok)
			}
			km.remove(v.a, func(x *kv) bool { return x == v })
			left = slices.DeleteFunc(left, func(x *kv) bool { return x == v })
			if _, ok := km.get(v.a); ok {
				t.Fatalf("order %v: %d still found after remove", order, i)
			}
			var all []*kv
			km.all(func(x *kv) { all = append(all, x) })
			if len(all) != len(left) || km.len() != len(left) {
				t.Fatalf("order %v: all = %d values, len %d, want %d", order, len(all), km.len(), len(left))
			}
			for _, x := range left {
				if got, ok := km.get(x.a); !ok || got != x {
					t.Fatalf("order %v: lost %v after removing %d", order, x.a, i)
				}
			}
		}
		if len(km.m) != 0 || len(km.more) != 0 {
			t.Fatalf("order %v: maps not empty: %v %v", order, km.m, km.more)
		}
	}
}

func TestCanonicalAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:80":               "127.0.0.1:80",
		"[::ffff:127.0.0.1]:80":      "127.0.0.1:80",
		"[::FFFF:7f00:1]:80":         "127.0.0.1:80",
		"[2001:DB8:0:0:0:0:0:1]:443": "[2001:db8::1]:443",
		"[2001:db8::1]:443":          "[2001:db8::1]:443",
		"[::1]:8080":                 "[::1]:8080",
		"[0:0:0:0:0:0:0:1]:8080":     "[::1]:8080",
		"127.0.0.1:0080":             "127.0.0.1:80",
		"[fe80::1%eth0]:80":          "[fe80::1%eth0]:80",
		"[FE80:0::1%eth0]:80":        "[fe80::1%eth0]:80",
		"localhost:80":               "localhost:80", // hostnames are not resolved
		"localhost:0080":             "localhost:80",
		"Backend.Example:443":        "Backend.Example:443", // nor lower-cased
		"backend.example:https":      "backend.example:https",
		"127.0.0.1":                  "127.0.0.1", // no port: left alone
		"::ffff:127.0.0.1":           "::ffff:127.0.0.1",
		"/run/backend.sock":          "/run/backend.sock",
		"unix:///run/backend.sock":   "unix:///run/backend.sock",
		"127.0.0.1:65536":            "127.0.0.1:65536",
		"":                           "",
		"[::ffff:10.0.0.1]:1":        "10.0.0.1:1",
		"a-very-long-host-name-that-does-not-fit-in-sixty-four-bytes.example.com:0443": "a-very-long-host-name-that-does-not-fit-in-sixty-four-bytes.example.com:443",
	} {
		if got := canonicalAddr(in); got != want {
			t.Errorf("canonicalAddr(%q) = %q, want %q", in, got, want)
		}
	}
	for _, in := range []string{"127.0.0.1:80", "[2001:db8::1]:443", "localhost:80"} {
		if n := testing.AllocsPerRun(100, func() { canonicalAddr(in) }); n != 0 {
			t.Errorf("canonicalAddr(%q) of a canonical address: %v allocations, want 0", in, n)
		}
	}
}

// TestKeyAddrSpellings: two spellings of one backend are one key; a
// hostname and its address are two.
func TestKeyAddrSpellings(t *testing.T) {
	km := newKeyMap[*kv]()
	v := &kv{keyAddr(resolver.Address{Addr: "127.0.0.1:5000"})}
	km.set(v.a, v)
	if got, ok := km.get(keyAddr(resolver.Address{Addr: "[::ffff:127.0.0.1]:5000"})); !ok || got != v {
		t.Errorf("the mapped spelling does not find the key of 127.0.0.1:5000")
	}
	if _, ok := km.get(keyAddr(resolver.Address{Addr: "localhost:5000"})); ok {
		t.Errorf("localhost:5000 found the key of 127.0.0.1:5000: hostnames must not be resolved")
	}
}
