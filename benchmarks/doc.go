// Package benchmarks measures leakproof's policies side by side with
// grpc-go's own, in the same process and on the same servers: picks, RPC
// throughput over loopback, resolver churn, the time from removing a backend
// to its socket being closed, memory per subchannel, and what tracing costs.
//
// It holds benchmarks only. Run them all, with benchstat tables of the
// results, with
//
//	scripts/bench.sh
//
// and read BENCHMARKS.md at the root of the module for what each one measures
// and the numbers of the last full run. Benchmark names are benchstat
// friendly: every comparison is a key such as impl=grpc / impl=leakproof, so
// that
//
//	benchstat -col /impl@(grpc leakproof) raw.txt
//
// puts grpc-go's number and leakproof's side by side.
package benchmarks
