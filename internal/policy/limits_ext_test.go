package policy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/policy"
)

// TestParseConfigLimitsAreInclusive: each documented limit is the last value
// accepted, and the value one step past it is refused. Mutation testing
// (scripts/mutation.sh --diff main internal/policy) showed no test of this
// package told d <= 0 from d < 0, > from >= at the maxima, or a valid
// drainTimeout from a refused one.
func TestParseConfigLimitsAreInclusive(t *testing.T) {
	for _, tc := range []struct {
		js string
		ok bool
	}{
		{`{"drainTimeout":"1s"}`, true},
		{`{"drainTimeout":"1ns"}`, true},
		{`{"drainTimeout":"0s"}`, false},
		{`{"drainTimeout":"-1ns"}`, false},
		{`{"drainTimeout":"x"}`, false},
		{fmt.Sprintf(`{"drainTimeout":%q}`, policy.MaxDrainTimeout), true},
		{fmt.Sprintf(`{"drainTimeout":%q}`, policy.MaxDrainTimeout+time.Nanosecond), false},
		{`{"traceRingSize":0}`, true},
		{`{"traceRingSize":-1}`, false},
		{fmt.Sprintf(`{"traceRingSize":%d}`, policy.MaxTraceRingSize), true},
		{fmt.Sprintf(`{"traceRingSize":%d}`, policy.MaxTraceRingSize+1), false},
		{fmt.Sprintf(`{"reresolveInterval":%q}`, policy.MinReresolveInterval), true},
		{fmt.Sprintf(`{"reresolveInterval":%q}`, policy.MinReresolveInterval-time.Nanosecond), false},
		{fmt.Sprintf(`{"reresolveInterval":%q}`, policy.MaxReresolveInterval), true},
		{fmt.Sprintf(`{"reresolveInterval":%q}`, policy.MaxReresolveInterval+time.Nanosecond), false},
		{`{"reresolveInterval":"0s"}`, false},
		{`{"reresolveInterval":"soon"}`, false},
		{`{"reresolveInterval":30}`, false},
	} {
		_, err := policy.Parse("leakproof_test", []byte(tc.js), 0, policy.Strict)
		if (err == nil) != tc.ok {
			t.Errorf("Parse(%s) = %v, want accepted %v", tc.js, err, tc.ok)
		}
	}
}
