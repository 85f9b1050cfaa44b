#!/usr/bin/env bash
# Throughput and latency of a real `pdp serve` under the load tool, with the
# in-memory limiter and with Redis, side by side in one run. Figures go to
# docs/PERFORMANCE.md. Usage: scripts/bench.sh [seconds] [callers]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
callers=${2:-32}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/pdp" ./cmd/pdp
go build -o "$work/pdpload" ./cmd/pdpload

# The example policies, with the email agent's business hours widened to
# the whole week: the rules evaluated are the same, but the figures do not
# depend on the time of day (outside New York office hours every send is
# refused before the limiter is reached).
mkdir "$work/policies"
cp examples/policies/*.yaml "$work/policies/"
sed -i -e 's/"09:00", "17:00"/"00:00", "24:00"/' -e 's/weekday(now, "America\/New_York") <= 5/weekday(now, "America\/New_York") <= 7/' \
  "$work/policies/email-agent.yaml"
grep -q '"00:00", "24:00"' "$work/policies/email-agent.yaml" || { echo "bench.sh: could not widen the hours" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_serving() {
  for _ in $(seq 100); do
    if "$work/pdp" agents list --addr "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "pdp did not start" >&2
  exit 1
}

# run NAME EXTRA_FLAGS...: one server, one load run, one report line.
run() {
  local name=$1; shift
  local port admin
  port=$(free_port); admin=$(free_port)
  "$work/pdp" serve --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
    --policies "$work/policies" --audit-dir "$work/audit-$name" --log-level warn "$@" 2>"$work/$name.log" &
  local pid=$!
  pids+=("$pid")
  wait_serving "127.0.0.1:$admin"
  printf '%-22s ' "$name"
  "$work/pdpload" -addr "127.0.0.1:$port" -d "${secs}s" -warmup 2s -c "$callers"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run memory
run memory-durable --audit-durability durable

if command -v redis-server >/dev/null; then
  rport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
  pids+=($!)
  sleep 0.5
  run redis --redis "redis://127.0.0.1:$rport"
else
  echo "redis-server not installed: skipping the Redis run (scripts/deps.sh installs it)"
fi
