#!/usr/bin/env bash
# Fails when the committed stubs differ from what proto/ generates.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/generate.sh
if ! git diff --exit-code --stat -- gen clients/python/src/agentpdp/v1; then
  echo "generated code is stale: run scripts/generate.sh and commit the result" >&2
  exit 1
fi
untracked=$(git ls-files --others --exclude-standard -- gen clients/python/src/agentpdp/v1)
if [ -n "$untracked" ]; then
  echo "generated files not committed: $untracked" >&2
  exit 1
fi
