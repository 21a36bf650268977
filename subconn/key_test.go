package subconn

import (
	"fmt"
	"math/rand/v2"
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
		if i := slices.IndexFunc(km.slots, func(x *kv) bool { return x != nil }); i >= 0 {
			t.Fatalf("order %v: slot %d still holds %v after every value was removed", order, i, km.slots[i].a)
		}
	}
}

// TestKeyMapChurn checks the table against a Go map through a long run of
// inserts, replacements and removals: growth, probe runs that wrap around
// the end of the table, and backward-shift deletion inside runs (keys that
// differ only in Attributes share a home slot).
func TestKeyMapChurn(t *testing.T) {
	for _, hosts := range []int{2, 5, 60} { // small tables wrap around often
		t.Run(fmt.Sprintf("hosts=%d", hosts), func(t *testing.T) { testKeyMapChurn(t, hosts) })
	}
}

func testKeyMapChurn(t *testing.T, hosts int) {
	rng := rand.New(rand.NewPCG(1, uint64(hosts)))
	km := newKeyMap[*kv]()
	ref := map[string]*kv{}
	name := func(a resolver.Address) string { return keyString(a) }
	mk := func() *kv {
		a := resolver.Address{Addr: fmt.Sprintf("10.0.%d.%d:443", rng.IntN(4), rng.IntN(hosts))}
		if z := rng.IntN(4); z > 0 {
			a.Attributes = attributes.New("zone", z)
		}
		return &kv{a}
	}
	check := func(step int) {
		t.Helper()
		if km.len() != len(ref) {
			t.Fatalf("step %d: len %d, want %d", step, km.len(), len(ref))
		}
		n := 0
		km.all(func(*kv) { n++ })
		if n != len(ref) {
			t.Fatalf("step %d: all visits %d values, want %d", step, n, len(ref))
		}
		for k, v := range ref {
			if got, ok := km.get(v.a); !ok || got != v {
				t.Fatalf("step %d: get(%s) = %v, %v; want the value stored", step, k, got, ok)
			}
		}
	}
	for step := range 20000 {
		v := mk()
		k := name(v.a)
		old, held := ref[k]
		if got, ok := km.get(v.a); ok != held || got != old {
			t.Fatalf("step %d: get(%s) = %v, %v; want %v, %v", step, k, got, ok, old, held)
		}
		switch {
		case held && rng.IntN(3) > 0:
			km.remove(v.a, func(x *kv) bool { return x == old })
			delete(ref, k)
		default:
			km.set(v.a, v)
			ref[k] = v
		}
		if step%50 == 0 {
			check(step)
		}
	}
	check(-1)
	for _, v := range ref {
		km.remove(v.a, func(x *kv) bool { return x == v })
	}
	if km.len() != 0 {
		t.Fatalf("len %d after removing everything", km.len())
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
	// Hostnames are told from IP literals without parsing them (which
	// allocates an error): each letter past the hex digits at either end of
	// its range, upper and lower case, and '-' and '_', alone or among hex
	// digits.
	names := []string{"127.0.0.1:80", "[2001:db8::1]:443", "localhost:80",
		"g:80", "z:80", "G:80", "Z:80", "abg:80", "abz:80", "ABG:80", "ABZ:80", "a-b:80", "a_b:80"}
	for _, in := range names {
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
