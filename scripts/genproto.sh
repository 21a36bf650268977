#!/usr/bin/env bash
# Lints and regenerates the Go code for every .proto under proto/.
#
#   scripts/genproto.sh           lint, then generate into proto/
#   scripts/genproto.sh --check   the same, then fail if proto/ differs from git
#
# Needs only Go and the module proxy: buf, protoc-gen-go and protoc-gen-go-grpc
# are built from the versions pinned in tools/ into .cache/bin (the first build
# of buf takes a minute or two; later runs reuse the binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

bin="$root/.cache/bin"
mkdir -p "$bin"

# go build is incremental: with an unchanged pin and a warm build cache these
# are quick no-ops that still rebuild the binary if a pin moved.
echo "genproto: building tools into .cache/bin"
(cd tools && go build -o "$bin/" github.com/bufbuild/buf/cmd/buf google.golang.org/grpc/cmd/protoc-gen-go-grpc)
(cd tools/protoc-gen-go && go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go)

export PATH="$bin:$PATH"
# Keep buf's own cache in the repository's cache too, and off the network.
export BUF_CACHE_DIR="$root/.cache/buf"

echo "genproto: buf lint"
buf lint

echo "genproto: buf generate"
buf generate

if $check; then
  # Untracked generated files count as a diff too: a new .proto whose Go was
  # never committed must fail the check.
  untracked=$(git ls-files --others --exclude-standard -- proto/)
  if ! git diff --exit-code -- proto/ || [ -n "$untracked" ]; then
    [ -n "$untracked" ] && { echo "untracked under proto/:"; echo "$untracked"; }
    echo "genproto: the generated code in proto/ is out of date; run scripts/genproto.sh and commit the result" >&2
    exit 1
  fi
  echo "genproto: proto/ is up to date"
fi
