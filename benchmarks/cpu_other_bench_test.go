//go:build !unix

package benchmarks

import "time"

// cpuTime is not measured on this platform; cpu-ns/op reads 0.
func cpuTime() time.Duration { return 0 }
