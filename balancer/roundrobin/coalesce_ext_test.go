package roundrobin_test

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
)

// TestCoalescePickersSendsNoneForATransitionWhileConnecting: with
// coalescePickers, while the balancer is CONNECTING every pick waits, so an
// endpoint failing beside one still connecting needs no picker: the update's
// and the one for READY are the only two.
func TestCoalescePickersSendsNoneForATransitionWhileConnecting(t *testing.T) {
	as := addrs("q", 2)
	_, f := startCoalesced(t, as)
	x, y := f.sc(t, as[0]), f.sc(t, as[1])
	x.set(t, connectivity.Connecting, nil)
	y.set(t, connectivity.Connecting, nil)
	x.set(t, connectivity.TransientFailure, errors.New("q-0 refused"))
	y.set(t, connectivity.Ready, nil)
	poll(t, "READY", func() bool { s, _ := f.current(); return s.ConnectivityState == connectivity.Ready })
	if _, n := f.current(); n != 2 {
		t.Fatalf("%d pickers, want 2: the update's (CONNECTING) and READY's; an endpoint failing while the balancer is CONNECTING needs none", n)
	}
}

// TestCoalescePickersStillSendsTheNewErrorInTransientFailure: coalescePickers
// saves pickers only while the balancer is READY or CONNECTING. In
// TRANSIENT_FAILURE each pick fails with an endpoint's own error, so an
// endpoint that fails again with a new error gets a picker that says so.
func TestCoalescePickersStillSendsTheNewErrorInTransientFailure(t *testing.T) {
	as := addrs("r", 2)
	_, f := startCoalesced(t, as)
	x, y := f.sc(t, as[0]), f.sc(t, as[1])
	for _, sc := range []*fakeSC{x, y} {
		sc.set(t, connectivity.Connecting, nil)
		sc.set(t, connectivity.TransientFailure, errors.New(sc.addr+" refused"))
	}
	poll(t, "TRANSIENT_FAILURE", func() bool { s, _ := f.current(); return s.ConnectivityState == connectivity.TransientFailure })
	x.set(t, connectivity.Idle, nil) // backoff over: pick_first reconnects it
	poll(t, "reconnect of "+x.addr, func() bool { return x.connects.Load() == 2 })
	x.set(t, connectivity.Connecting, nil)
	x.set(t, connectivity.TransientFailure, errors.New(x.addr+" refused again"))
	poll(t, "a picker with the new error", func() bool {
		s, _ := f.current()
		for range 4 {
			if _, err := s.Picker.Pick(balancer.PickInfo{}); err != nil && strings.Contains(err.Error(), "refused again") {
				return true
			}
		}
		return false
	})
}
