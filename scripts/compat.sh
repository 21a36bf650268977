#!/usr/bin/env bash
# Runs leakproof's checks against another grpc-go release than the one
# go.mod requires, in a temporary copy of the tree (the work tree is not
# touched): go get that release, go mod tidy, go vet, go test -race ./...,
# and the quick conformance run (grpc-go's own policy tests, from that
# release, with leakproof's policies substituted).
#
#   scripts/compat.sh v1.85.0                    # everything (~15 minutes on 2 cores)
#   scripts/compat.sh v1.85.0 --no-conformance   # vet and the tests only
#
# .ci/run runs it on the newest release it names; go.mod's own version (the
# minimum) is what the rest of .ci/run tests. See docs/compatibility.md.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:-}
conformance=1
case "${2:-}" in
  "") ;;
  --no-conformance) conformance=0 ;;
  *) version="" ;;
esac
if [[ ! "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "usage: scripts/compat.sh vX.Y.Z [--no-conformance]" >&2
  exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/leakproof-compat-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# The files git tracks or would track, as they are in the work tree (so
# uncommitted edits are tested too); nothing ignored, no build output.
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$tmp"
cd "$tmp"

minimum=$(go list -m -f '{{.Version}}' google.golang.org/grpc)
# docs/compatibility_test.go checks the documented range against go.mod's
# requirement, which this copy moves: it reads the original from here.
export LEAKPROOF_COMPAT_MINIMUM="$minimum"
echo "== grpc-go $version (go.mod requires $minimum)"
go get "google.golang.org/grpc@$version"
go mod tidy
got=$(go list -m -f '{{.Version}}' google.golang.org/grpc)
if [ "$got" != "$version" ]; then
  echo "compat: the module graph selects grpc-go $got, not $version" >&2
  exit 1
fi
# What the module graph moved with it, for the log.
go list -m google.golang.org/grpc github.com/envoyproxy/go-control-plane/envoy github.com/cncf/xds/go

echo "== go vet on grpc-go $version"
go vet ./...

echo "== go test -race ./... on grpc-go $version"
go test -race ./...

if [ "$conformance" = 1 ]; then
  echo "== quick conformance on grpc-go $version"
  scripts/conformance.sh --quick
fi
echo "compat: grpc-go $version passed"
