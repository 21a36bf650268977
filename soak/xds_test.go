package soak

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestXDSFaultsNeedXDS: the control plane's faults are selected only for
// an xDS run, and a run without xDS rejects them by name.
func TestXDSFaultsNeedXDS(t *testing.T) {
	all, err := ParseFaults("all")
	if err != nil || len(all) != len(faultTable) {
		t.Fatalf("ParseFaults(all) = %v, %v; want the %d faults of faultTable", all, err, len(faultTable))
	}
	withXDS, err := ParseXDSFaults("-tls")
	if err != nil || len(withXDS) != len(faultTable)+len(xdsFaultTable)-1 || withXDS[len(withXDS)-1] != FaultXDSLocalityDup {
		t.Fatalf("ParseXDSFaults(-tls) = %v, %v; want every fault but tls, the control plane's last", withXDS, err)
	}
	if _, err := ParseFaults("xds-nack"); err == nil || !strings.Contains(err.Error(), "needs an xDS control plane") {
		t.Errorf("ParseFaults(xds-nack) = %v, want an error saying it needs xDS", err)
	}
	if err := (Config{Faults: []Fault{FaultXDSRestart}}).Validate(); err == nil || !strings.Contains(err.Error(), `fault "xds-restart" needs an xDS control plane`) {
		t.Errorf("Validate without XDS = %v, want the xDS fault rejected", err)
	}
	if err := (Config{XDS: true, Faults: []Fault{FaultXDSRestart}, Duration: 5 * time.Second}).Validate(); err != nil {
		t.Errorf("Validate with XDS: %v", err)
	}
	cfg, err := Config{XDS: true}.withDefaults()
	if err != nil || len(cfg.Faults) != len(faultTable)+len(xdsFaultTable) {
		t.Errorf("default faults under XDS = %v, %v; want all %d", cfg.Faults, err, len(faultTable)+len(xdsFaultTable))
	}
}

// TestSpelling: a repeated address is spelled differently each time, and
// every spelling is the same backend.
func TestSpelling(t *testing.T) {
	seen := map[string]int{}
	a := "127.0.0.1:8080"
	got := []string{spelling(a, seen), spelling(a, seen), spelling(a, seen), spelling(a, seen)}
	want := []string{a, "[::ffff:127.0.0.1]:8080", "[::ffff:7f00:1]:8080", "[0:0:0:0:0:ffff:7f00:1]:8080"}
	if !slices.Equal(got, want) {
		t.Fatalf("spellings %v, want %v", got, want)
	}
	for _, s := range got {
		ap := netip.MustParseAddrPort(s)
		if netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String() != a {
			t.Errorf("%s is not %s", s, a)
		}
	}
}
