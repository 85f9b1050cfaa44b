#!/usr/bin/env bash
# Installs what the test suite needs and a fresh machine lacks: a real
# redis-server (Debian package) and the Python environment for the client
# and adapter tests. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "deps: installing redis-server"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
  # The package starts a system redis on 6379; the tests start their own.
  $sudo systemctl disable --now redis-server >/dev/null 2>&1 || $sudo service redis-server stop >/dev/null 2>&1 || true
fi

# The venv lives in a per-machine cache keyed by the pinned requirements,
# so fresh clones on one machine (CI's) install the frameworks once; .venv
# links to it.
if [ -f clients/python/pyproject.toml ]; then
  key=$(cat clients/python/requirements-test.txt clients/python/pyproject.toml | sha256sum | cut -c1-12)
  venv="${AGENTPDP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agentpdp}/venv-$key"
  if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -r clients/python/requirements-test.txt
    touch "$venv/.complete"
  fi
  if [ -e .venv ] && [ ! -L .venv ]; then rm -rf .venv; fi
  ln -sfn "$venv" .venv
  # Editable, so it always points at this clone's sources.
  .venv/bin/pip install -q --no-deps -e "clients/python"
  .venv/bin/pip install -q -e "clients/python[all]"
fi
