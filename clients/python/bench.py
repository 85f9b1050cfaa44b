#!/usr/bin/env python3
"""What the Python client adds to a guarded call, over the raw gRPC round trip.

    go build -o .cache/bin/pdp ./cmd/pdp
    PDP_BINARY=.cache/bin/pdp .venv/bin/python clients/python/bench.py
    .venv/bin/python clients/python/bench.py --addr 127.0.0.1:8181   # a PDP you run

Without --addr it starts `pdp serve` on a free loopback port with a one-rule
policy (agent bench-agent may call echo). It then times, call by call and
interleaved so both see the same machine load:

  raw      the generated stub's Authorize, on the client's own channel, with a
           request built once (raw/default: on a channel with gRPC's defaults)
  client   Client.authorize(...) from plain Python values, parsed to a Decision
  guarded  a @guarded function (outcome reports off, then on)

and prints the medians and the median of the per-pair differences, which is
the client's added latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

import agentpdp
from agentpdp.v1 import authorization_pb2_grpc

POLICY = """\
apiVersion: agentpdp/v1
kind: AgentPolicy
name: bench
agents: ["bench-agent"]
default: deny
rules:
  - id: echo
    tools: ["echo"]
    effect: allow
"""

ARGS = {"to": ["alice@customer.com"], "subject": "Re: your order", "body": "Shipped today. " * 8}


def start_pdp() -> tuple[str, subprocess.Popen, str]:
    tmp = tempfile.mkdtemp(prefix="agentpdp-bench-")
    (Path(tmp) / "policies").mkdir()
    (Path(tmp) / "policies" / "bench.yaml").write_text(POLICY)
    binary = os.environ.get("PDP_BINARY")
    if not binary:
        binary = str(Path(tmp) / "pdp")
        subprocess.run(["go", "build", "-o", binary, "./cmd/pdp"], cwd=Path(__file__).resolve().parents[2], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        addr = "127.0.0.1:%d" % s.getsockname()[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        admin = "127.0.0.1:%d" % s.getsockname()[1]
    proc = subprocess.Popen([binary, "serve", "--listen", addr, "--admin-listen", admin, "--audit-dir",
                             str(Path(tmp) / "audit"), "--policies", str(Path(tmp) / "policies"),
                             "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ch = grpc.insecure_channel(addr)
    grpc.channel_ready_future(ch).result(timeout=20)
    ch.close()
    return addr, proc, tmp


def us(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1e6:8.1f} us"


def bench_sync(addr: str, n: int) -> None:
    client = agentpdp.Client(addr, agent="bench-agent", timeout=1.0)
    raw = client._stub
    raw_ch = grpc.insecure_channel(addr)
    raw_default = authorization_pb2_grpc.AuthorizationServiceStub(raw_ch)
    req = client._request(tool="echo", args=ARGS, principal="u1", session_id="s1")

    @agentpdp.guarded(tool="echo", agent="bench-agent", client=client, principal="u1", session_id="s1", report=False)
    def echo(to, subject, body):
        return None

    @agentpdp.guarded(tool="echo", agent="bench-agent", client=client, principal="u1", session_id="s1")
    def echo_reported(to, subject, body):
        return None

    def t_raw():
        resp = raw.Authorize(req, timeout=1.0)
        assert resp.decision == 1

    def t_raw_default():
        assert raw_default.Authorize(req, timeout=1.0).decision == 1

    def t_client():
        assert client.authorize(tool="echo", args=ARGS, principal="u1", session_id="s1").allowed

    def t_guarded():
        echo(**ARGS)

    def t_guarded_reported():
        echo_reported(**ARGS)

    cases = {"raw": t_raw, "raw/default": t_raw_default, "client": t_client, "guarded": t_guarded}
    for f in cases.values():  # warm up
        for _ in range(200):
            f()
    times: dict[str, list[float]] = {k: [] for k in cases}
    order = list(cases.items())
    for _ in range(n):
        random.shuffle(order)
        for k, f in order:
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    # With outcome reports on, each call leaves a ReportOutcome RPC running in
    # the background, which would slow whatever runs next: timed on its own.
    times["guarded+report"] = []
    for _ in range(n):
        t0 = time.perf_counter()
        t_guarded_reported()
        times["guarded+report"].append(time.perf_counter() - t0)
    print(f"sync, {n} calls each, interleaved in random order (guarded+report: back to back)")
    for k, xs in times.items():
        extra = ""
        if k == "guarded+report":  # not paired: the difference of the medians
            extra = f"   added over raw: {(statistics.median(xs) - statistics.median(times['raw'])) * 1e6:7.1f} us"
        elif k != "raw":
            diffs = [a - b for a, b in zip(xs, times["raw"])]
            extra = f"   added over raw: median {statistics.median(diffs) * 1e6:7.1f} us"
        print(f"  {k:15s} median {us(xs)}  p90 {sorted(xs)[int(len(xs) * .9)] * 1e6:8.1f} us{extra}")
    client.close()
    raw_ch.close()


async def bench_async(addr: str, n: int) -> None:
    client = agentpdp.AsyncClient(addr, agent="bench-agent", timeout=1.0)
    raw = client._get_stub()
    req = client._request(tool="echo", args=ARGS, principal="u1", session_id="s1")

    @agentpdp.guarded(tool="echo", agent="bench-agent", client=client, principal="u1", session_id="s1", report=False)
    async def echo(to, subject, body):
        return None

    async def t_raw():
        assert (await raw.Authorize(req, timeout=1.0)).decision == 1

    async def t_client():
        assert (await client.authorize(tool="echo", args=ARGS, principal="u1", session_id="s1")).allowed

    async def t_guarded():
        await echo(**ARGS)

    cases = {"raw": t_raw, "client": t_client, "guarded": t_guarded}
    for f in cases.values():
        for _ in range(200):
            await f()
    times: dict[str, list[float]] = {k: [] for k in cases}
    order = list(cases.items())
    for _ in range(n):
        random.shuffle(order)
        for k, f in order:
            t0 = time.perf_counter()
            await f()
            times[k].append(time.perf_counter() - t0)
    print(f"asyncio, {n} calls each, interleaved in random order")
    for k, xs in times.items():
        extra = ""
        if k != "raw":
            diffs = [a - b for a, b in zip(xs, times["raw"])]
            extra = f"   added over raw: median {statistics.median(diffs) * 1e6:7.1f} us"
        print(f"  {k:15s} median {us(xs)}  p90 {sorted(xs)[int(len(xs) * .9)] * 1e6:8.1f} us{extra}")
    await client.close()


def bench_cpu(n: int) -> None:
    """The client's own work per call, without the network: building the
    request from Python values and parsing the response to a Decision."""
    from agentpdp._types import build_request, parse_response
    from agentpdp.v1 import decision_pb2

    resp = decision_pb2.AuthorizeResponse(
        decision=1, policy_decision=1, mode=3, decision_id="01a20f3d-1c8b-7be2-8a76-21724d717a2f",
        policy_version="12dbbd594db7b1d3", policy="bench",
        reasons=[decision_pb2.Reason(policy="bench", rule_id="echo", effect=1, message="ok")])
    xs = []
    for _ in range(n):
        t0 = time.perf_counter()
        build_request(agent="bench-agent", tool="echo", args=ARGS, principal="u1", session_id="s1")
        parse_response(resp)
        xs.append(time.perf_counter() - t0)
    print(f"client CPU per call (build request + parse decision, no I/O): median {us(xs)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--addr", help="a running PDP whose policy allows bench-agent to call echo")
    ap.add_argument("-n", type=int, default=3000, help="calls per case (default 3000)")
    a = ap.parse_args()
    proc = tmp = None
    addr = a.addr
    if not addr:
        addr, proc, tmp = start_pdp()
    try:
        print(f"PDP at {addr}; Python {sys.version.split()[0]}, grpcio {grpc.__version__}")
        bench_cpu(a.n)
        bench_sync(addr, a.n)
        asyncio.run(bench_async(addr, a.n))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
