#!/usr/bin/env bash
# Regenerates every committed stub from proto/ with pinned tool versions:
# Go through buf (go run), Python through grpcio-tools in a private venv.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=v1.75.0
GRPCIO_TOOLS_VERSION=1.85.1

go run "github.com/bufbuild/buf/cmd/buf@${BUF_VERSION}" lint
rm -rf gen/go
go run "github.com/bufbuild/buf/cmd/buf@${BUF_VERSION}" generate

venv=.cache/venv-gen
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q "grpcio-tools==${GRPCIO_TOOLS_VERSION}"
pyout=clients/python/src
rm -rf "$pyout/agentpdp/v1"
mkdir -p "$pyout"
"$venv/bin/python" -m grpc_tools.protoc -Iproto \
  --python_out="$pyout" --pyi_out="$pyout" --grpc_python_out="$pyout" \
  proto/agentpdp/v1/*.proto
touch "$pyout/agentpdp/v1/__init__.py"
