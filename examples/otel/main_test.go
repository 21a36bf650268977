package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/leaktest"
)

// TestMain fails the package if a test leaves a goroutine, a descriptor or a
// socket behind: the HTTP server and the MeterProvider are shut down, not
// ignored.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	var out bytes.Buffer
	if err := run(&out, "127.0.0.1:0", 0); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Logf("output:\n%s", out.String())
	for _, want := range []string{
		`leakproof_subchannel_open{grpc_target="otel:///echo"} 2`,
		`leakproof_subchannel_open_sockets{grpc_target="otel:///echo"} 2`,
		`leakproof_subchannel_connections_lost_total{grpc_target="otel:///echo",leakproof_cause="reset"} 1`,
		`grpc_subchannel_open_connections{grpc_target="otel:///echo"} 2`,
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("the output has no line %s", want)
		}
	}
}
