#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== dependencies"
scripts/deps.sh

echo "== generated code is fresh"
scripts/check-generated.sh

echo "== format and vet"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^gen/') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...

echo "== go tests"
go test -count=1 -timeout 10m ./...

echo "== race detector on the service's packages and the Go client"
go test -count=1 -race -timeout 10m ./internal/... ./clients/go/...

echo "== Jaeger end-to-end (builds and caches Jaeger v2 the first time)"
jaeger=$(scripts/jaeger.sh)
JAEGER_BINARY="$jaeger" go test -count=1 -tags jaeger ./test/jaeger

echo "== example policies"
go run ./cmd/pdp check examples/policies
go run ./cmd/pdp test examples/policies

if [ -d clients/python/tests ]; then
  echo "== python client and adapters"
  go build -o .cache/bin/pdp ./cmd/pdp
  PDP_BINARY="$PWD/.cache/bin/pdp" .venv/bin/python -m pytest -q clients/python/tests
fi
