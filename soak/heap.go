package soak

import "runtime/metrics"

// heapSamples are the runtime metrics behind Sample.HeapInUse (objects and
// the free space of in-use spans, as runtime.MemStats.HeapInuse counts
// them, read without stopping the world) and Sample.HeapLive.
var heapSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
	{Name: "/gc/heap/live:bytes"},
}

// readHeap returns the heap in use and the heap live after the last GC.
func readHeap() (inUse, live uint64) {
	s := make([]metrics.Sample, len(heapSamples))
	copy(s, heapSamples)
	metrics.Read(s)
	get := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	return get(0) + get(1), get(2)
}
