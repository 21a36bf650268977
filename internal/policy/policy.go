// Package policy holds what leakproof's load-balancing policies share: their
// service-config options, grpc's own pick_first builder (captured before
// anything can replace it) and a picker that hands grpc one fixed SubConn.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/balancer"
	grpcpickfirst "google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/serviceconfig"
)

// GRPCPickFirst is grpc-go's own pick_first builder, captured at init time
// so that a later ReplaceGRPCPolicy cannot make a policy its own child.
var GRPCPickFirst = balancer.Get(grpcpickfirst.Name)

// ConfigOf returns the *Config in a ClientConnState, the default for none,
// or an error wrapping balancer.ErrBadResolverState for a foreign type.
func ConfigOf(policy string, lbc serviceconfig.LoadBalancingConfig) (*Config, error) {
	switch c := lbc.(type) {
	case nil:
		return &Config{}, nil
	case *Config:
		return c, nil
	default:
		return nil, fmt.Errorf("%s: received config of type %T: %w", policy, lbc, balancer.ErrBadResolverState)
	}
}

// PickFirstChildConfig returns grpc pick_first's parsed config for shuffle.
// There are only two; each is parsed once.
func PickFirstChildConfig(shuffle bool) (serviceconfig.LoadBalancingConfig, error) {
	if shuffle {
		return shuffledChild()
	}
	return orderedChild()
}

var (
	shuffledChild = sync.OnceValues(func() (serviceconfig.LoadBalancingConfig, error) { return parsePickFirst(true) })
	orderedChild  = sync.OnceValues(func() (serviceconfig.LoadBalancingConfig, error) { return parsePickFirst(false) })
)

func parsePickFirst(shuffle bool) (serviceconfig.LoadBalancingConfig, error) {
	p, ok := GRPCPickFirst.(balancer.ConfigParser)
	if !ok {
		return nil, errors.New("policy: grpc's pick_first has no config parser")
	}
	return p.ParseConfig(json.RawMessage(fmt.Sprintf(`{"shuffleAddressList":%t}`, shuffle)))
}

// ReadySubConn returns the real SubConn a READY pick_first picker always
// returns, so that a parent can pick it directly. It reports false for any
// picker whose result is not a plain SubConn (an error, a Done callback or
// metadata), which is then used as it is.
func ReadySubConn(p balancer.Picker) (balancer.SubConn, bool) {
	if p == nil {
		return nil, false
	}
	res, err := p.Pick(balancer.PickInfo{})
	if err != nil || res.SubConn == nil || res.Done != nil || res.Metadata != nil {
		return nil, false
	}
	if h, ok := res.SubConn.(*subconn.SubConn); ok {
		return h.Unwrap(), true
	}
	return res.SubConn, true
}

// FixedPicker always picks one SubConn; it allocates nothing per Pick.
type FixedPicker struct{ res balancer.PickResult }

// NewFixedPicker returns a picker that always returns sc.
func NewFixedPicker(sc balancer.SubConn) *FixedPicker {
	return &FixedPicker{res: balancer.PickResult{SubConn: sc}}
}

// Pick implements balancer.Picker.
func (p *FixedPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) { return p.res, nil }
