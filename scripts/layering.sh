#!/usr/bin/env bash
# Fails if an import arrow inside the module runs upward or sideways.
#
# Every package of the module has a layer; a package may import only packages
# of lower layers (the top layer, programs and benchmarks, may also import one
# another). The layers, lowest first:
#
#   0  internal/sockowner, internal/procfs, internal/channelzview, internal/termsafe, jsontime
#      (shared by the layers above)
#   1  trace (the refcount trace and the leak checker)
#   2  subconn, leaktest, proto/..., internal/dnsserver
#   3  internal/policy, testbackend, internal/xdsplane, internal/testing/leakzoo
#   4  balancer/...
#   5  admin, soak
#   6  cmd/..., examples/..., benchmarks, internal/testing/e2e/...,
#      internal/testing/xdse2e, scripts/... (programs)
#
# So the trace never sees a manager, leaktest never sees a policy, the soak,
# admin or the proto, and the soak and the CLI sit at the top. A package
# missing from the table fails the check: give it a layer here when you add it.
#
# internal/testing/... holds what only tests use (fixtures, the leaky
# policies, end-to-end suites); the rest of internal/ ships. Only a package
# under internal/testing may import one there.
#
# Only the packages' own imports count, not their tests': a test may use
# anything (subconn's tests start testbackend servers).
set -euo pipefail
cd "$(dirname "$0")/.."

module=$(go list -m)

layer() {
  case "$1" in
    internal/sockowner | internal/procfs | internal/channelzview | internal/termsafe | jsontime) echo 0 ;;
    trace) echo 1 ;;
    subconn | leaktest | proto/* | internal/dnsserver) echo 2 ;;
    internal/policy | testbackend | internal/xdsplane | internal/testing/leakzoo) echo 3 ;;
    balancer/*) echo 4 ;;
    admin | soak) echo 5 ;;
    cmd/* | docs | examples/* | benchmarks | internal/testing/e2e | internal/testing/e2e/* | internal/testing/xdse2e | scripts/*) echo 6 ;;
    *) echo "" ;;
  esac
}
top=6

fail=0
while read -r pkg imports; do
  from=${pkg#"$module"/}
  lf=$(layer "$from")
  if [ -z "$lf" ]; then
    echo "layering: $from has no layer; add it to scripts/layering.sh"
    fail=1
    continue
  fi
  for imp in $imports; do
    case "$imp" in "$module"/*) ;; *) continue ;; esac
    to=${imp#"$module"/}
    lt=$(layer "$to")
    if [ -z "$lt" ]; then
      echo "layering: $to (imported by $from) has no layer; add it to scripts/layering.sh"
      fail=1
    elif [[ "$to" == internal/testing/* && "$from" != internal/testing/* ]]; then
      echo "layering: $from imports $to: only tests and internal/testing may use what is under internal/testing"
      fail=1
    elif [ "$lt" -gt "$lf" ] || { [ "$lt" -eq "$lf" ] && [ "$lf" -ne "$top" ]; }; then
      echo "layering: $from (layer $lf) imports $to (layer $lt): arrows must point down"
      fail=1
    fi
  done
done < <(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...)

if [ "$fail" -ne 0 ]; then
  exit 1
fi
echo "layering: ok"
