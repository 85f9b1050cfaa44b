"""Sync and asyncio clients of the PDP's AuthorizationService, failing closed."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Optional, Sequence

import grpc
from google.protobuf import duration_pb2

from agentpdp._types import (
    REASON_APPROVAL_EXPIRED,
    REASON_APPROVAL_REJECTED,
    Approval,
    ContentScan,
    Decision,
    InputLike,
    PrincipalLike,
    Reason,
    ResourceLike,
    build_request,
    invalid_decision,
    outcome_status,
    parse_approval,
    parse_response,
    parse_scan,
    to_struct,
    unavailable_decision,
)
from agentpdp.errors import ApprovalRequired, Denied, PDPError
from agentpdp.v1 import approval_pb2, authorization_pb2, authorization_pb2_grpc

log = logging.getLogger("agentpdp")

DEFAULT_TARGET = "127.0.0.1:8181"
DEFAULT_TIMEOUT = 0.25
DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF = 0.01
DEFAULT_REPORT_TIMEOUT = 2.0
_WAIT_HEADROOM = 5.0

# Reconnect quickly after the PDP restarts; gRPC's default backoff (1 s, up to
# 120 s) would keep failing calls closed long after it is back.
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.enable_retries", 0),
)

try:  # W3C trace context, when OpenTelemetry is in use.
    from opentelemetry import propagate as _otel_propagate
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - optional
    _otel_trace = None
    _otel_propagate = None


def _trace_metadata():
    if _otel_trace is None:
        return None
    if not _otel_trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _otel_propagate.inject(carrier)
    return tuple(carrier.items()) or None


def _describe(e: grpc.RpcError) -> str:
    try:
        return f"{e.code().name}: {e.details()}"
    except Exception:  # noqa: BLE001 - a transport error of any shape
        return str(e)


class _Base:
    """What both clients share: settings and the decision policy."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        agent: Optional[str] = None,
        framework: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
        fail_open: Iterable[str] = (),
        credentials: Optional[grpc.ChannelCredentials] = None,
        options: Sequence[tuple[str, Any]] = (),
        report_timeout: float = DEFAULT_REPORT_TIMEOUT,
    ):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.target = target
        self.agent = agent
        self.framework = framework
        self.timeout = timeout
        self.attempts = max(1, int(attempts))
        self.backoff = backoff
        self.fail_open = frozenset(fail_open)
        self.report_timeout = report_timeout
        self._credentials = credentials
        self._options = tuple(_CHANNEL_OPTIONS) + tuple(options)

    def _retry_pause(self, e: grpc.RpcError, attempt: int, wait: float, deadline: float) -> Optional[float]:
        """How long to sleep before trying again after ``e``, or None to give
        up: only UNAVAILABLE is retried, within the attempts and the deadline;
        the pause is ``wait`` with jitter."""
        if e.code() != grpc.StatusCode.UNAVAILABLE or attempt >= self.attempts:
            return None
        pause = wait / 2 + random.random() * wait / 2
        if time.monotonic() + pause >= deadline:
            return None
        return pause

    @staticmethod
    def _wait_request(approval_id: str, left: float):
        return approval_pb2.WaitApprovalRequest(
            approval_id=approval_id, timeout=duration_pb2.Duration(seconds=int(left), nanos=int(left % 1 * 1e9)))

    @staticmethod
    def _wait_failed(approval_id: str, e: grpc.RpcError, deadline: float) -> Optional[PDPError]:
        """The error a failed wait raises, or None to try again."""
        if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() >= deadline:
            return PDPError(f"wait for approval {approval_id}: {_describe(e)}", e.code().name)
        return None

    def _request(self, **kw):
        kw["agent"] = kw.get("agent") or self.agent or ""
        kw["framework"] = kw.get("framework") or self.framework
        return build_request(**kw)

    def _on_error(self, req, e: grpc.RpcError) -> Decision:
        code = e.code() if hasattr(e, "code") else None
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return invalid_decision(e.details() or "")
        agent = req.agent.id
        open_ = agent in self.fail_open
        if open_:
            log.warning("agentpdp: PDP unreachable; allowing a fail-open agent's call (agent=%s tool=%s): %s",
                        agent, req.tool, _describe(e))
        return unavailable_decision(agent, _describe(e), open_)

    @staticmethod
    def _approval_outcome(tool: str, decision: Decision, approval: Approval):
        """None when the approval was granted; otherwise the error to raise."""
        if approval.status == "APPROVED":
            return None
        if approval.timed_out or approval.status == "PENDING":
            return ApprovalRequired(tool, decision, timed_out=True)
        if approval.status == "REJECTED":
            who = approval.approver or "a human"
            msg = f"{who} rejected the call" + (f": {approval.note}" if approval.note else "")
            return Denied(tool, _with_reason(decision, Reason(REASON_APPROVAL_REJECTED, "DENY", msg)))
        if approval.status == "EXPIRED":
            return Denied(tool, _with_reason(decision, Reason(REASON_APPROVAL_EXPIRED, "DENY",
                                                              "the approval expired before anyone decided")))
        return ApprovalRequired(tool, decision, cause=f"approval is {approval.status}")

    @staticmethod
    def _raise_unless_allowed(tool: str, d: Decision) -> Decision:
        if d.allowed:
            return d
        if d.needs_approval:
            raise ApprovalRequired(tool, d)
        raise Denied(tool, d)


def _with_reason(d: Decision, r: Reason) -> Decision:
    import dataclasses

    return dataclasses.replace(d, decision="DENY", reasons=(r,) + d.reasons)


class Client(_Base):
    """A blocking client: one gRPC channel, safe to share between threads.

    It fails closed: ``authorize`` always returns a Decision, and when the PDP
    cannot be reached within ``timeout`` (after retrying UNAVAILABLE
    ``attempts`` times with exponential backoff) that decision is DENY with
    the reason ``pdp_unavailable`` - or ALLOW for an agent named in
    ``fail_open``.
    """

    def __init__(self, target: str = DEFAULT_TARGET, **kw: Any):
        super().__init__(target, **kw)
        if self._credentials is not None:
            self._channel = grpc.secure_channel(target, self._credentials, options=self._options)
        else:
            self._channel = grpc.insecure_channel(target, options=self._options)
        self._stub = authorization_pb2_grpc.AuthorizationServiceStub(self._channel)
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pool_lock = threading.Lock()
        self._closed = False

    # -- lifecycle
    def close(self) -> None:
        """Waits for background outcome reports, then closes the channel."""
        if self._closed:
            return
        self._closed = True
        with self._pool_lock:
            pool = self._pool
        if pool is not None:
            pool.shutdown(wait=True)
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- calls
    def _call(self, method, req, timeout: float):
        deadline = time.monotonic() + timeout
        wait = self.backoff
        md = _trace_metadata()
        attempt = 0
        while True:
            attempt += 1
            left = deadline - time.monotonic()
            try:
                return method(req, timeout=max(left, 0.001), metadata=md)
            except grpc.RpcError as e:
                pause = self._retry_pause(e, attempt, wait, deadline)
                if pause is None:
                    raise
                time.sleep(pause)
                wait *= 2

    def authorize(
        self,
        *,
        tool: str,
        agent: Optional[str] = None,
        args: Optional[Mapping[str, Any]] = None,
        principal: PrincipalLike = None,
        roles: Optional[Sequence[str]] = None,
        session_id: Optional[str] = None,
        resource: ResourceLike = None,
        inputs: Optional[Iterable[InputLike]] = None,
        dry_run: bool = False,
        approval_id: Optional[str] = None,
        framework: Optional[str] = None,
        agent_attributes: Optional[Mapping[str, Any]] = None,
        principal_attributes: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
    ) -> Decision:
        """Asks the PDP to decide one call. Never raises for a PDP that is
        down or slow (that is a DENY); raises ValueError for a call without
        an agent id or tool."""
        req = self._request(
            agent=agent, tool=tool, args=args, principal=principal, roles=roles, session_id=session_id,
            resource=resource, inputs=inputs, dry_run=dry_run, approval_id=approval_id, framework=framework,
            agent_attributes=agent_attributes, principal_attributes=principal_attributes,
        )
        return self.authorize_request(req, timeout=timeout)

    def authorize_request(self, req, *, timeout: Optional[float] = None) -> Decision:
        """``authorize`` for a ready AuthorizeRequest message."""
        try:
            resp = self._call(self._stub.Authorize, req, timeout or self.timeout)
        except grpc.RpcError as e:
            return self._on_error(req, e)
        return parse_response(resp)

    def require(self, *, tool: str, wait_approval: Optional[float] = None, **kw: Any) -> Decision:
        """``authorize``, raising unless the call may run: Denied on DENY (or an
        unreachable PDP), ApprovalRequired on REQUIRE_APPROVAL - unless
        ``wait_approval`` seconds are given, then it waits for a human's
        decision and retries with the approval id."""
        req = self._request(tool=tool, **kw)
        d = self.authorize_request(req)
        if d.needs_approval and wait_approval and wait_approval > 0:
            d = self._await_approval(req, d, wait_approval)
        return self._raise_unless_allowed(tool, d)

    def _await_approval(self, req, d: Decision, wait: float) -> Decision:
        tool = req.tool
        if not d.approval_id:
            raise ApprovalRequired(tool, d, cause="the PDP created no approval to wait for")
        try:
            a = self.wait_approval(d.approval_id, wait)
        except PDPError as e:
            raise ApprovalRequired(tool, d, cause=str(e)) from e
        err = self._approval_outcome(tool, d, a)
        if err is not None:
            raise err
        req.approval_id = d.approval_id
        return self.authorize_request(req)

    def wait_approval(self, approval_id: str, timeout: float = 60.0) -> Approval:
        """Blocks until the approval is decided or ``timeout`` seconds pass
        (then the result has ``timed_out`` set and status PENDING)."""
        deadline = time.monotonic() + timeout
        wait = self.backoff
        while True:
            left = max(deadline - time.monotonic(), 0.001)
            req = self._wait_request(approval_id, left)
            try:
                resp = self._stub.WaitApproval(req, timeout=left + _WAIT_HEADROOM, metadata=_trace_metadata())
            except grpc.RpcError as e:
                err = self._wait_failed(approval_id, e, deadline)
                if err is not None:
                    raise err from e
                time.sleep(min(wait, max(deadline - time.monotonic(), 0)))
                wait = min(wait * 2, 1.0)
                continue
            if not resp.timed_out or time.monotonic() >= deadline:
                return parse_approval(resp.approval, timed_out=resp.timed_out)

    def report_outcome(
        self,
        decision_id: str,
        status: str = "succeeded",
        summary: str = "",
        *,
        details: Optional[Mapping[str, Any]] = None,
        agent: Optional[str] = None,
        raise_errors: bool = False,
    ) -> Optional[str]:
        """Appends what the tool did to the audit trail ("succeeded", "failed"
        or "skipped"). Returns the outcome id, or None when reporting failed
        (logged; pass raise_errors=True to get PDPError instead)."""
        req = authorization_pb2.ReportOutcomeRequest(
            decision_id=decision_id, status=outcome_status(status), summary=summary[:65536],
            agent_id=agent or self.agent or "")
        if details:
            req.details.CopyFrom(to_struct(details))
        try:
            return self._call(self._stub.ReportOutcome, req, self.report_timeout).outcome_id
        except grpc.RpcError as e:
            if raise_errors:
                raise PDPError(f"report outcome: {_describe(e)}", e.code().name) from e
            log.warning("agentpdp: reporting the outcome of %s failed: %s", decision_id, _describe(e))
            return None

    def report_outcome_background(self, decision_id: str, status: str = "succeeded", summary: str = "",
                                  **kw: Any) -> Optional[Future]:
        """``report_outcome`` on a background thread, failures logged; close()
        waits for the reports in flight."""
        if not decision_id or self._closed:
            return None
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentpdp-report")
            pool = self._pool
        try:
            return pool.submit(self.report_outcome, decision_id, status, summary, **kw)
        except RuntimeError:  # shut down meanwhile
            return None

    def scan(self, texts: Iterable[str]) -> list[ContentScan]:
        """Scores texts for prompt injection and finds PII."""
        req = authorization_pb2.ScanContentRequest(texts=list(texts))
        try:
            resp = self._call(self._stub.ScanContent, req, self.timeout)
        except grpc.RpcError as e:
            raise PDPError(f"scan: {_describe(e)}", e.code().name) from e
        return [parse_scan(s) for s in resp.results]


class AsyncClient(_Base):
    """The asyncio client (grpc.aio), with the same fail-closed defaults as
    Client. The channel is made on first use in the running event loop."""

    def __init__(self, target: str = DEFAULT_TARGET, **kw: Any):
        super().__init__(target, **kw)
        self._channel: Optional[grpc.aio.Channel] = None
        self._stub: Any = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._tasks: set[asyncio.Task] = set()

    def _get_stub(self):
        loop = asyncio.get_running_loop()
        if self._stub is None or self._loop is not loop:
            if self._credentials is not None:
                self._channel = grpc.aio.secure_channel(self.target, self._credentials, options=self._options)
            else:
                self._channel = grpc.aio.insecure_channel(self.target, options=self._options)
            self._stub = authorization_pb2_grpc.AuthorizationServiceStub(self._channel)
            self._loop = loop
        return self._stub

    async def close(self) -> None:
        """Waits for background outcome reports, then closes the channel."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.report_timeout)
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _call(self, name: str, req, timeout: float):
        method = getattr(self._get_stub(), name)
        deadline = time.monotonic() + timeout
        wait = self.backoff
        md = _trace_metadata()
        attempt = 0
        while True:
            attempt += 1
            left = deadline - time.monotonic()
            try:
                return await method(req, timeout=max(left, 0.001), metadata=md)
            except grpc.RpcError as e:
                pause = self._retry_pause(e, attempt, wait, deadline)
                if pause is None:
                    raise
                await asyncio.sleep(pause)
                wait *= 2

    async def authorize(
        self,
        *,
        tool: str,
        agent: Optional[str] = None,
        args: Optional[Mapping[str, Any]] = None,
        principal: PrincipalLike = None,
        roles: Optional[Sequence[str]] = None,
        session_id: Optional[str] = None,
        resource: ResourceLike = None,
        inputs: Optional[Iterable[InputLike]] = None,
        dry_run: bool = False,
        approval_id: Optional[str] = None,
        framework: Optional[str] = None,
        agent_attributes: Optional[Mapping[str, Any]] = None,
        principal_attributes: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
    ) -> Decision:
        """See Client.authorize."""
        req = self._request(
            agent=agent, tool=tool, args=args, principal=principal, roles=roles, session_id=session_id,
            resource=resource, inputs=inputs, dry_run=dry_run, approval_id=approval_id, framework=framework,
            agent_attributes=agent_attributes, principal_attributes=principal_attributes,
        )
        return await self.authorize_request(req, timeout=timeout)

    async def authorize_request(self, req, *, timeout: Optional[float] = None) -> Decision:
        try:
            resp = await self._call("Authorize", req, timeout or self.timeout)
        except grpc.RpcError as e:
            return self._on_error(req, e)
        return parse_response(resp)

    async def require(self, *, tool: str, wait_approval: Optional[float] = None, **kw: Any) -> Decision:
        """See Client.require."""
        req = self._request(tool=tool, **kw)
        d = await self.authorize_request(req)
        if d.needs_approval and wait_approval and wait_approval > 0:
            if not d.approval_id:
                raise ApprovalRequired(tool, d, cause="the PDP created no approval to wait for")
            try:
                a = await self.wait_approval(d.approval_id, wait_approval)
            except PDPError as e:
                raise ApprovalRequired(tool, d, cause=str(e)) from e
            err = self._approval_outcome(tool, d, a)
            if err is not None:
                raise err
            req.approval_id = d.approval_id
            d = await self.authorize_request(req)
        return self._raise_unless_allowed(tool, d)

    async def wait_approval(self, approval_id: str, timeout: float = 60.0) -> Approval:
        """See Client.wait_approval."""
        stub = self._get_stub()
        deadline = time.monotonic() + timeout
        wait = self.backoff
        while True:
            left = max(deadline - time.monotonic(), 0.001)
            req = self._wait_request(approval_id, left)
            try:
                resp = await stub.WaitApproval(req, timeout=left + _WAIT_HEADROOM, metadata=_trace_metadata())
            except grpc.RpcError as e:
                err = self._wait_failed(approval_id, e, deadline)
                if err is not None:
                    raise err from e
                await asyncio.sleep(min(wait, max(deadline - time.monotonic(), 0)))
                wait = min(wait * 2, 1.0)
                continue
            if not resp.timed_out or time.monotonic() >= deadline:
                return parse_approval(resp.approval, timed_out=resp.timed_out)

    async def report_outcome(
        self,
        decision_id: str,
        status: str = "succeeded",
        summary: str = "",
        *,
        details: Optional[Mapping[str, Any]] = None,
        agent: Optional[str] = None,
        raise_errors: bool = False,
    ) -> Optional[str]:
        """See Client.report_outcome."""
        req = authorization_pb2.ReportOutcomeRequest(
            decision_id=decision_id, status=outcome_status(status), summary=summary[:65536],
            agent_id=agent or self.agent or "")
        if details:
            req.details.CopyFrom(to_struct(details))
        try:
            return (await self._call("ReportOutcome", req, self.report_timeout)).outcome_id
        except grpc.RpcError as e:
            if raise_errors:
                raise PDPError(f"report outcome: {_describe(e)}", e.code().name) from e
            log.warning("agentpdp: reporting the outcome of %s failed: %s", decision_id, _describe(e))
            return None

    def report_outcome_background(self, decision_id: str, status: str = "succeeded", summary: str = "",
                                  **kw: Any) -> Optional[asyncio.Task]:
        """``report_outcome`` as a task; close() waits for it."""
        if not decision_id:
            return None
        t = asyncio.get_running_loop().create_task(self.report_outcome(decision_id, status, summary, **kw))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    async def scan(self, texts: Iterable[str]) -> list[ContentScan]:
        """See Client.scan."""
        req = authorization_pb2.ScanContentRequest(texts=list(texts))
        try:
            resp = await self._call("ScanContent", req, self.timeout)
        except grpc.RpcError as e:
            raise PDPError(f"scan: {_describe(e)}", e.code().name) from e
        return [parse_scan(s) for s in resp.results]
