#!/usr/bin/env bash
# Builds Jaeger v2 from the Go module proxy (go install refuses it: its
# go.mod has replace directives) and caches the binary outside the work
# tree ($AGENTPDP_CACHE, default ~/.cache/agentpdp), so fresh clones on one
# machine build it once. Prints the binary's path. The first build takes
# minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
JAEGER_VERSION=v1.76.0
cache="${AGENTPDP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agentpdp}"
out="$cache/jaeger-$JAEGER_VERSION"
if [ -x "$out" ]; then
  echo "$out"
  exit 0
fi
src=$(GOFLAGS=-mod=mod go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
# A fixed source path keeps Go's build cache valid between builds.
work="$cache/jaeger-src-$JAEGER_VERSION"
rm -rf "$work"
mkdir -p "$work"
cp -r "$src/." "$work/"
chmod -R u+w "$work"
mkdir -p "$(dirname "$out")"
(cd "$work" && GOFLAGS=-mod=mod go build -o "$out.tmp" ./cmd/jaeger) >&2
mv "$out.tmp" "$out"
echo "$out"
