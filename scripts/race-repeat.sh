#!/usr/bin/env bash
# Runs the whole suite with the race detector N times in a row (default 10)
# and stops at the first failure, keeping its output: the record that the
# suite does not flake.
#
#   scripts/race-repeat.sh [N] [go test flags...]
#
# Each run is a fresh `go test -race -count=1 ./...` (nothing cached). The
# log of every run goes to .cache/race-repeat/run-K.log; the last line says
# how many runs passed. On a 2-core machine one run takes several minutes:
# run it alone.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-10}
if [ $# -gt 0 ]; then shift; fi
case "$n" in '' | *[!0-9]*) echo "usage: $0 [N] [go test flags...]" >&2; exit 2 ;; esac

out=.cache/race-repeat
mkdir -p "$out"
for k in $(seq 1 "$n"); do
  start=$(date +%s)
  if go test -race -count=1 "$@" ./... >"$out/run-$k.log" 2>&1; then
    echo "race-repeat: run $k of $n passed in $(($(date +%s) - start))s"
  else
    echo "race-repeat: run $k of $n FAILED after $(($(date +%s) - start))s; its log: $out/run-$k.log"
    grep -E '^(--- FAIL|FAIL|panic:)' "$out/run-$k.log" | head -20 || true
    echo "race-repeat: $((k - 1)) clean run(s) in a row before the failure"
    exit 1
  fi
done
echo "race-repeat: $n clean run(s) in a row"
