#!/usr/bin/env bash
# Build Centrifugo once into the benchmark cache and print the binary's path.
#
#   benchmarks/peers/centrifugo/build.sh        # the path (building it if missing)
#
# The binary lands in ${CHATCORE_BENCH_HOME:-~/.cache/chatcore-bench}/centrifugo-<version>/
# and is never rebuilt while it is there (delete the folder to rebuild). The build runs
# under `nice -n 19` (a few minutes on a shared 2-core machine, the module download
# included). Needs Go >= 1.24 on PATH or at /usr/local/go/bin/go, and the Go module proxy.
set -euo pipefail

VERSION=${CHATCORE_CENTRIFUGO_VERSION:-v6.9.1}
CACHE=${CHATCORE_BENCH_HOME:-${HOME:-/root}/.cache/chatcore-bench}
DIR="$CACHE/centrifugo-$VERSION"
BIN="$DIR/centrifugo"

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
GO=$(command -v go || true)
[[ -n "$GO" ]] || GO=/usr/local/go/bin/go
if [[ ! -x "$GO" ]]; then
  echo "build.sh: no Go toolchain (install Go >= 1.24 or put it on PATH)" >&2
  exit 1
fi
mkdir -p "$DIR"
tmp=$(mktemp -d "$DIR/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "building centrifugo $VERSION into $DIR (nice -n 19; takes minutes once)" >&2
GOBIN="$tmp" CGO_ENABLED=0 nice -n 19 "$GO" install \
  -ldflags "-s -w -X github.com/centrifugal/centrifugo/v6/internal/build.Version=${VERSION#v}" \
  "github.com/centrifugal/centrifugo/v6@$VERSION" >&2
mv "$tmp/centrifugo" "$BIN"   # atomic: a half-built binary is never at $BIN
echo "$BIN"
