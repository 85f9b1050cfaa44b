#!/usr/bin/env bash
# Builds Jaeger v2 from the Go module proxy (go install refuses it: its
# go.mod has replace directives) and caches the binary in .cache/jaeger.
# Prints the binary's path. The first build takes minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
JAEGER_VERSION=v1.76.0
out="$PWD/.cache/jaeger/jaeger-$JAEGER_VERSION"
if [ -x "$out" ]; then
  echo "$out"
  exit 0
fi
src=$(GOFLAGS=-mod=mod go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"
mkdir -p "$(dirname "$out")"
(cd "$work" && GOFLAGS=-mod=mod go build -o "$out.tmp" ./cmd/jaeger) >&2
mv "$out.tmp" "$out"
echo "$out"
