#!/usr/bin/env bash
# Runs grpc-go's own tests on grpc's policies and with leakproof's
# substituted under grpc's names, and compares them per package.
#
#   scripts/conformance.sh            # every package (7 to 14 minutes on 2 cores)
#   scripts/conformance.sh --quick    # the CI subset
#   scripts/conformance.sh -pkg balancer/weightedroundrobin -v
#
# Needs only Go and the module proxy. See scripts/conformance/main.go.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
for a in "$@"; do
  case "$a" in
    --quick) args+=(-quick) ;;
    --keep) args+=(-keep) ;;
    *) args+=("$a") ;;
  esac
done
exec go run ./scripts/conformance "${args[@]}"
