"""A real `pdp serve` for the client and adapter tests.

The binary is $PDP_BINARY, or built with `go build ./cmd/pdp` from the
repository root when that is unset. The server runs on free loopback ports
with a policy directory written here: a small test policy (echo is allowed,
delete is denied, send_money needs approval) and the example email-agent
policy without its business-hours rule, so no test depends on the clock.
"""

from __future__ import annotations

import os

# CrewAI and the Agents SDK phone home for telemetry and tracing; the tests
# run without network, so turn that off before either is imported.
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_DISABLE_TRACKING", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
os.environ.setdefault("OPENAI_API_KEY", "sk-test-not-used")

import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import grpc
import pytest
import yaml

from agentpdp.v1 import approval_pb2, approval_pb2_grpc

REPO = Path(__file__).resolve().parents[3]

TEST_POLICY = """\
apiVersion: agentpdp/v1
kind: AgentPolicy
name: test-agent
agents: ["test-agent"]
mode: enforce
default: deny
rules:
  - id: echo-allowed
    tools: ["echo"]
    effect: allow
    message: echo is harmless
  - id: never-delete
    tools: ["delete"]
    effect: deny
    message: deleting is never allowed
  - id: money-needs-approval
    tools: ["send_money"]
    effect: require_approval
    message: a human approves every payment
approval:
  ttl: 10m
"""


def free_addr() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % s.getsockname()[1]


def write_policies(directory: Path) -> None:
    (directory / "test-agent.yaml").write_text(TEST_POLICY)
    email = yaml.safe_load((REPO / "examples/policies/email-agent.yaml").read_text())
    before = len(email["rules"])
    email["rules"] = [r for r in email["rules"] if r["id"] != "outside-business-hours"]
    assert len(email["rules"]) == before - 1, "the example policy no longer has outside-business-hours"
    (directory / "email-agent.yaml").write_text(yaml.safe_dump(email, sort_keys=False))


def pdp_binary(tmp: Path) -> str:
    b = os.environ.get("PDP_BINARY")
    if b:
        if not os.access(b, os.X_OK):
            pytest.fail(f"PDP_BINARY={b} is not an executable")
        return b
    if shutil.which("go") is None:
        pytest.fail("PDP_BINARY is unset and there is no Go toolchain to build ./cmd/pdp")
    out = tmp / "pdp"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/pdp"], cwd=REPO, check=True)
    return str(out)


@dataclass
class PDP:
    addr: str
    admin: str
    proc: subprocess.Popen
    log_path: Path
    audit_dir: Path

    def audit_records(self) -> list[dict]:
        import json

        out = []
        for f in sorted(self.audit_dir.rglob("*")) if self.audit_dir.exists() else []:
            if f.is_file():
                for line in f.read_text(errors="replace").splitlines():
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        return out

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def approvals(self) -> approval_pb2_grpc.ApprovalServiceStub:
        if not hasattr(self, "_admin_stub"):
            self._admin_channel = grpc.insecure_channel(self.admin)
            self._admin_stub = approval_pb2_grpc.ApprovalServiceStub(self._admin_channel)
        return self._admin_stub

    def decide_next(self, *, agent: str, tool: str, principal: str, approve: bool = True,
                    timeout: float = 10.0) -> approval_pb2.Approval:
        """Decides the next pending approval of (agent, tool, principal) over
        the admin API, as a human would."""
        api = self.approvals()
        deadline = time.monotonic() + timeout
        while True:
            pending = api.ListPending(approval_pb2.ListPendingRequest(
                agent_id=agent, tool=tool, principal_id=principal), timeout=2)
            if pending.approvals:
                return api.Decide(approval_pb2.DecideRequest(
                    approval_id=pending.approvals[0].id, approve=approve, approver="pytest",
                    note="decided by the test"), timeout=2)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no pending approval for {agent}/{tool}/{principal}")
            time.sleep(0.02)

    def decide_in_background(self, **kw) -> "Decider":
        d = Decider(self, kw)
        d.start()
        return d


class Decider(threading.Thread):
    """Approves (or rejects) from another thread while the agent waits."""

    def __init__(self, pdp: PDP, kw: dict):
        super().__init__(daemon=True)
        self.pdp, self.kw = pdp, kw
        self.result: Optional[approval_pb2.Approval] = None
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            self.result = self.pdp.decide_next(**self.kw)
        except BaseException as e:  # noqa: BLE001 - reported by check()
            self.error = e

    def check(self) -> approval_pb2.Approval:
        self.join(15)
        if self.error is not None:
            raise AssertionError(f"deciding the approval over the admin API failed: {self.error!r}")
        assert self.result is not None, "the approver thread did not finish"
        return self.result


def _wait_ready(addr: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        ch = grpc.insecure_channel(addr)
        try:
            grpc.channel_ready_future(ch).result(timeout=0.2)
            return
        except grpc.FutureTimeoutError:
            if proc.poll() is not None:
                raise RuntimeError("pdp serve exited before serving")
            if time.monotonic() > deadline:
                raise TimeoutError(f"pdp serve not reachable at {addr} after {timeout}s")
        finally:
            ch.close()


@pytest.fixture(scope="session")
def pdp():
    tmp = Path(tempfile.mkdtemp(prefix="agentpdp-py-"))
    policies = tmp / "policies"
    policies.mkdir()
    write_policies(policies)
    binary = pdp_binary(tmp)
    log_path = tmp / "pdp.log"
    # A port free when picked can be taken before pdp binds it (a
    # connection's source port, another suite's server): then try others.
    for attempt in range(5):
        addr, admin = free_addr(), free_addr()
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            [binary, "serve", "--listen", addr, "--admin-listen", admin, "--audit-dir", str(tmp / "audit"),
             "--policies", str(policies), "--log-format", "text", "--shutdown-grace", "2s"],
            stdout=log, stderr=subprocess.STDOUT)
        server = PDP(addr=addr, admin=admin, proc=proc, log_path=log_path, audit_dir=tmp / "audit")
        try:
            _wait_ready(addr, proc, 20)
            _wait_ready(admin, proc, 5)
            break
        except Exception:
            log.close()
            busy = proc.poll() is not None and "address already in use" in server.logs()
            if attempt == 4 or not busy:
                print(server.logs())
                proc.kill()
                proc.wait()
                raise
    try:
        yield server
    except Exception:
        print(server.logs())
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def down_addr() -> str:
    """A loopback address nothing listens on."""
    return free_addr()


@pytest.fixture
def principal() -> str:
    """A principal of its own per test, so approvals and rate limits do not mix."""
    return "u-" + uuid.uuid4().hex[:12]
