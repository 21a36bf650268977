package subconn

import (
	"testing"
	"unsafe"
)

// A balancer may hold tens of thousands of subchannels: every one has a
// record and a handle per holder, and every one that connected a cold part.
// BenchmarkMemorySubchannel and BenchmarkMemoryPolicy count these bytes
// against grpc's; each limit is a malloc size class.
func TestPerSubchannelSizes(t *testing.T) {
	for _, c := range []struct {
		name     string
		got, max uintptr
	}{
		{"record", unsafe.Sizeof(record{}), 80},
		{"SubConn (a handle)", unsafe.Sizeof(SubConn{}), 80},
		{"recordCold", unsafe.Sizeof(recordCold{}), 128},
	} {
		if c.got > c.max {
			t.Errorf("%s is %d bytes, want at most %d", c.name, c.got, c.max)
		}
	}
}
