#!/usr/bin/env bash
# Runs leakproof's benchmarks side by side with grpc-go's own policies and
# prints benchstat tables and ratios (leakproof / grpc) of the medians.
#
#   scripts/bench.sh                 every group, 6 rounds (benchstat needs 6
#                                    samples for a confidence interval)
#   scripts/bench.sh -count 10       10 rounds
#   scripts/bench.sh -only pick,churn   some groups: manager pick churn scale rpc
#                                    release memory guard, and xds (not in the
#                                    default set: about a minute a round)
#   scripts/bench.sh -large          also the churn rows above 2,000 endpoints
#                                    (LEAKPROOF_BENCH_LARGE=1): grpc's
#                                    round_robin needs tens of seconds per op
#                                    there, so a 6-round run takes about an
#                                    hour longer
#   scripts/bench.sh -out DIR        where raw output goes (default .cache/bench/<time>)
#   scripts/bench.sh -report DIR     only print the tables of an earlier run
#
# Each round runs every group once (-count 1), so that slow drift on a shared
# machine spreads over all configurations instead of hitting one; benchstat
# then takes the median over the rounds. Benchmark times per group are fixed
# below to keep a full run near 15 minutes on 2 cores. Needs only Go and the
# module proxy: benchstat is run at a pinned version, not added to go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."

benchstat_version=v0.0.0-20260908200009-22c9c6c9d4da
count=6
only="manager,pick,churn,scale,rpc,release,memory,guard"
large=""
out=""
report=""
while [ $# -gt 0 ]; do
  case "$1" in
    -count) count=$2; shift 2 ;;
    -only) only=$2; shift 2 ;;
    -out) out=$2; shift 2 ;;
    -report) report=$2; shift 2 ;;
    -large) large=1; shift ;;
    *) echo "usage: $0 [-count N] [-only g1,g2] [-large] [-out DIR] [-report DIR]" >&2; exit 2 ;;
  esac
done

benchstat() {
  # Run outside the module so its go.mod is not consulted.
  (cd "${TMPDIR:-/tmp}" && go run "golang.org/x/perf/cmd/benchstat@$benchstat_version" "$@")
}

# group NAME PACKAGE BENCH-REGEX BENCHTIME: one group of benchmarks.
groups=(
  "manager   ./subconn     ^(BenchmarkAcquireRelease|BenchmarkSetSync)$    0.5s"
  "pick      ./benchmarks  ^(BenchmarkPick|BenchmarkPickTrace)$            0.5s"
  "churn     ./benchmarks  ^(BenchmarkChurn|BenchmarkChurnTrace)$          1s"
  "scale     ./benchmarks  ^BenchmarkChurnScale$                           1s"
  "rpc       ./benchmarks  ^(BenchmarkUnary|BenchmarkStream)$              1s"
  "release   ./benchmarks  ^(BenchmarkReleaseRemoved|BenchmarkReleaseShutdown)$  200x"
  "release   ./benchmarks  ^BenchmarkReleaseOpenStream$                    5x"
  "memory    ./benchmarks  ^(BenchmarkMemorySubchannel|BenchmarkMemoryPolicy)$  1x"
  "guard     ./benchmarks  ^(BenchmarkGuardPick|BenchmarkGuardChurn)$      0.5s"
  "xds       ./benchmarks  ^BenchmarkXDSChurn$                             5x"
)

selected() { [[ ",$only," == *",$1,"* ]]; }

if [ -z "$report" ]; then
  out=${out:-.cache/bench/$(date -u +%Y%m%dT%H%M%SZ)}
  mkdir -p "$out/bin"
  out=$(cd "$out" && pwd)
  {
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "go: $(go version)"
    echo "nproc: $(nproc 2>/dev/null || echo unknown)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //')"
    echo "mem: $(grep -m1 MemTotal /proc/meminfo 2>/dev/null | awk '{printf "%.1f GiB", $2/1048576}')"
    echo "count: $count"
    echo "large: ${large:-no}"
  } > "$out/machine.txt"
  cat "$out/machine.txt"

  echo "bench: building test binaries into $out/bin"
  go test -c -o "$out/bin/subconn.test" ./subconn
  go test -c -o "$out/bin/benchmarks.test" ./benchmarks

  for round in $(seq 1 "$count"); do
    for g in "${groups[@]}"; do
      read -r name pkg regex benchtime <<<"$g"
      selected "$name" || continue
      echo "bench: round $round/$count: $name $regex"
      bin="$out/bin/$(basename "$pkg").test"
      LEAKPROOF_BENCH_LARGE=$large "$bin" -test.run '^$' -test.bench "$regex" -test.benchtime "$benchtime" \
        -test.benchmem -test.count 1 -test.timeout 30m >> "$out/$name.txt"
    done
  done
  report=$out
fi

# ratios FILE: the medians of benchstat's CSV as ratios to the first column.
ratios() {
  awk -F, '
    /^,/ && $2 != "" && $3 == "" {            # a header row: ,base,,col,,,...
      n = 0
      for (i = 2; i <= NF; i++) if ($i != "") { n++; col[n] = i; name[n] = $i }
      hdr = "ratio to " name[1] ":"
      for (j = 2; j <= n; j++) hdr = hdr "  " name[j]
      next
    }
    /^,/ { pending = sprintf("\n%s (%s)", hdr, $2); next }
    NF > 2 && $1 != "" && n > 1 && $(col[1]) + 0 > 0 {
      if (pending != "") { print pending; pending = "" }
      line = sprintf("  %-70s", $1)
      for (j = 2; j <= n; j++) line = line sprintf("  %6.3f", $(col[j]) / $(col[1]))
      print line
    }
  ' "$1"
}

# table FILE PROJECTION: a benchstat table and its ratios.
table() {
  local file=$1 col=$2
  [ -s "$file" ] || return 0
  echo
  echo "=================== $(basename "$file" .txt): $col"
  benchstat -col "$col" "$file"
  benchstat -format csv -col "$col" "$file" 2>/dev/null | ratios /dev/stdin
}

r=$report
table "$r/manager.txt" "/trace@(off ring sub sub64)"
if [ -s "$r/pick.txt" ]; then
  grep -v 'PickTrace' "$r/pick.txt" > "$r/.pick-compare.txt"
  grep -E '^(goos|goarch|pkg|cpu|BenchmarkPickTrace)' "$r/pick.txt" > "$r/.pick-trace.txt" || true
  table "$r/.pick-compare.txt" "/impl@(grpc leakproof)"
  table "$r/.pick-trace.txt" "/trace@(off ring sub sub64)"
fi
if [ -s "$r/churn.txt" ]; then
  grep -v 'ChurnTrace' "$r/churn.txt" > "$r/.churn-compare.txt"
  grep -E '^(goos|goarch|pkg|cpu|BenchmarkChurnTrace)' "$r/churn.txt" > "$r/.churn-trace.txt" || true
  table "$r/.churn-compare.txt" "/impl@(grpc leakproof leakproof-coalesce)"
  table "$r/.churn-trace.txt" "/trace@(off ring sub sub64)"
fi
# The scale group: each row's cost at 2,000, 5,000 and 10,000 endpoints as a
# multiple of its cost at 1,000 (linear growth: 2, 5 and 10).
table "$r/scale.txt" "/endpoints"
table "$r/rpc.txt" "/impl@(grpc leakproof leakproof_nodialer)"
table "$r/release.txt" "/impl@(grpc leakproof)"
table "$r/memory.txt" "/impl@(grpc leakproof leakproof_trace_off)"
table "$r/guard.txt" "/impl@(bare guard)"
echo
echo "bench: raw output in $r"
