#!/usr/bin/env bash
# Build the Go load generator once into the benchmark cache and print the binary's path.
#
#   benchmarks/loadgen-go/build.sh
#
# The binary lands in ${CHATCORE_BENCH_HOME:-~/.cache/chatcore-bench}/loadgen-go-<hash>/,
# where <hash> covers this folder's sources (go.mod, go.sum, *.go but the tests): a changed source
# builds a new binary, an unchanged one never rebuilds. The build runs under
# `nice -n 19` (about a minute the first time, the two modules' download included).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${CHATCORE_BENCH_HOME:-${HOME:-/root}/.cache/chatcore-bench}
HASH=$(cd "$HERE" && cat go.mod go.sum $(ls *.go | grep -v _test.go) | sha256sum | cut -c1-16)
DIR="$CACHE/loadgen-go-$HASH"
BIN="$DIR/loadgen"

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
tmp=$(mktemp "$DIR/.loadgen.XXXXXX")
trap 'rm -f "$tmp"' EXIT
echo "building the Go load generator into $DIR (nice -n 19)" >&2
(cd "$HERE" && CGO_ENABLED=0 nice -n 19 "$GO" build -trimpath -o "$tmp" .) >&2
mv "$tmp" "$BIN"   # atomic: a half-built binary is never at $BIN
echo "$BIN"
