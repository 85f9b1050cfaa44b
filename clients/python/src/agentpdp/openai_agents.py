"""OpenAI Agents SDK adapter: a tool input guardrail and a needs_approval
function backed by the PDP.

    from agentpdp.openai_agents import PDPToolGuard
    guard = PDPToolGuard(pdp, agent="email-agent")
    agent = guard.protect(Agent(name="email-agent", tools=[send_email], ...))
    result = await Runner.run(agent, "...")
    while result.interruptions:                      # REQUIRE_APPROVAL
        state = await guard.resolve_interruptions(result, timeout=300)
        result = await Runner.run(agent, state)

- ``guard.input_guardrail`` (a ``ToolInputGuardrail``) asks the PDP before the
  tool runs; a call that is not allowed is rejected with a message naming the
  rules (``reject_content``), which the model sees instead of the result.
- ``guard.needs_approval`` (a FunctionTool ``needs_approval`` function) asks the
  PDP first and returns True on REQUIRE_APPROVAL, so the SDK interrupts the
  run. The approval itself is the PDP's (a human decides it through the PDP's
  admin API or ``pdp approvals``); ``resolve_interruptions`` waits for those
  decisions and approves or rejects the interruptions in the RunState. On
  resume the guardrail retries with the approval id, so the PDP, not the SDK,
  has the last word.
- ``protect(agent)`` / ``protect_tool(tool)`` attach both to function tools.

Identity: the agent id is ``agent=`` or the SDK agent's name. Principal and
session are ``principal=`` / ``session_id=`` (values or functions of the run
context wrapper), else ``user_id`` / ``session_id`` attributes (or keys) of
your run context object, else the RunConfig's ``group_id`` for the session.
The tool outputs of the current turn are sent as untrusted ``inputs``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import json
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Any, Callable, Optional, Union

from agents import Agent, FunctionTool, ToolGuardrailFunctionOutput, ToolInputGuardrail, ToolOutputGuardrail
from agents.tool_guardrails import ToolInputGuardrailData, ToolOutputGuardrailData

from agentpdp._types import Decision, Input, current_context
from agentpdp.client import AsyncClient, Client
from agentpdp.errors import ApprovalRequired, Denied, NotAllowed, PDPError, denial_message

__all__ = ["PDPToolGuard"]

log = logging.getLogger("agentpdp")

FRAMEWORK = "openai-agents"
_MAX_INPUT_CHARS = 64 * 1024
_MAX_KEPT = 10000
_MAX_RUNS = 1024

Resolver = Union[str, Callable[[Any], Optional[str]], None]


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _recent_outputs(wrapper: Any, limit: int) -> list[Input]:
    out: list[Input] = []
    for item in reversed(list(getattr(wrapper, "turn_input", None) or ())):
        if _get(item, "type") == "function_call_output":
            o = _get(item, "output")
            text = o if isinstance(o, str) else json.dumps(o, default=str)
            out.append(Input(source=f"tool:{_get(item, 'call_id') or 'unknown'}", text=text[:_MAX_INPUT_CHARS]))
            if len(out) >= limit:
                break
    out.reverse()
    return out


class PDPToolGuard:
    """The PDP as an OpenAI Agents SDK tool guardrail and approval source.

    Args:
        client: ``agentpdp.AsyncClient`` (preferred) or ``Client``.
        agent, principal, session_id: see the module doc.
        tool_name: maps SDK tool names to policy tool names (dict or function).
        wait_approval: seconds the guardrail waits for a human on
            REQUIRE_APPROVAL when the SDK's approval flow is not used
            (needs_approval not wired); None rejects at once.
        max_inputs: how many tool outputs of the current turn to send as inputs.
    """

    def __init__(
        self,
        client: Union[AsyncClient, Client],
        *,
        agent: Resolver = None,
        principal: Resolver = None,
        session_id: Resolver = None,
        tool_name: Union[Mapping[str, str], Callable[[str], str], None] = None,
        wait_approval: Optional[float] = None,
        max_inputs: int = 5,
        report: bool = True,
    ):
        self.client = client
        self.agent = agent
        self.principal = principal
        self.session_id = session_id
        self.tool_name = tool_name
        self.wait_approval = wait_approval
        self.max_inputs = max_inputs
        self.report = report
        self._lock = threading.Lock()
        # call_id -> the decision needs_approval got, for the guardrail to reuse
        self._decisions: OrderedDict[str, Decision] = OrderedDict()
        # id(run's Usage object) -> (that Usage, recent tool outputs): the SDK
        # shares one Usage per run with every tool context, and shows tools
        # neither the run's items nor earlier outputs, so they are recorded.
        self._outputs: OrderedDict[int, tuple[Any, deque]] = OrderedDict()
        # call_id -> (ALLOW decision, agent id), reported when the output comes
        self._allowed: OrderedDict[str, tuple[Decision, Optional[str]]] = OrderedDict()
        self.input_guardrail: ToolInputGuardrail[Any] = ToolInputGuardrail(
            guardrail_function=self._guardrail, name="agentpdp")
        self.output_guardrail: ToolOutputGuardrail[Any] = ToolOutputGuardrail(
            guardrail_function=self._record_output, name="agentpdp-inputs")

    # -- the PDP, sync or async
    async def _authorize(self, **kw: Any) -> Decision:
        if isinstance(self.client, AsyncClient):
            return await self.client.authorize(**kw)
        return await asyncio.to_thread(self.client.authorize, **kw)

    async def _wait(self, approval_id: str, timeout: float):
        if isinstance(self.client, AsyncClient):
            return await self.client.wait_approval(approval_id, timeout)
        return await asyncio.to_thread(self.client.wait_approval, approval_id, timeout)

    # -- mapping
    def _resolve(self, r: Resolver, wrapper: Any) -> Optional[str]:
        return r(wrapper) if callable(r) else r

    def _policy_tool(self, name: str) -> str:
        if callable(self.tool_name):
            return self.tool_name(name)
        if isinstance(self.tool_name, Mapping):
            return self.tool_name.get(name, name)
        return name

    def _request(self, wrapper: Any, agent_obj: Any, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        user_ctx = getattr(wrapper, "context", None)
        ctx = current_context()
        agent = self._resolve(self.agent, wrapper) or getattr(agent_obj, "name", None) or ctx.agent
        principal = self._resolve(self.principal, wrapper)
        if principal is None:
            principal = _get(user_ctx, "user_id") or _get(user_ctx, "principal")
        session = self._resolve(self.session_id, wrapper)
        if session is None:
            session = (_get(user_ctx, "session_id") or _get(user_ctx, "thread_id")
                       or _get(getattr(wrapper, "run_config", None), "group_id"))
        return dict(agent=agent, tool=self._policy_tool(tool), args=dict(args), principal=principal,
                    session_id=session, framework=FRAMEWORK,
                    inputs=self._inputs(wrapper) if self.max_inputs else None)

    def _inputs(self, wrapper: Any) -> list[Input]:
        usage = getattr(wrapper, "usage", None)
        with self._lock:
            entry = self._outputs.get(id(usage))
            recorded = list(entry[1]) if entry is not None and entry[0] is usage else []
        return (_recent_outputs(wrapper, self.max_inputs) + recorded)[-self.max_inputs:]

    async def _record_output(self, data: ToolOutputGuardrailData) -> ToolGuardrailFunctionOutput:
        """Tool output guardrail: reports the outcome of an allowed call and
        remembers the output as untrusted input for the run's next calls;
        never changes it."""
        out = data.output if isinstance(data.output, str) else json.dumps(data.output, default=str)
        with self._lock:
            allowed = self._allowed.pop(data.context.tool_call_id, None)
        if allowed is not None:
            self._report(allowed[0], allowed[1], out)
        if self.max_inputs:
            usage = getattr(data.context, "usage", None)
            item = Input(source=f"tool:{data.context.tool_name}", text=out[:_MAX_INPUT_CHARS])
            with self._lock:
                entry = self._outputs.get(id(usage))
                if entry is None or entry[0] is not usage:
                    entry = self._outputs[id(usage)] = (usage, deque(maxlen=self.max_inputs))
                    while len(self._outputs) > _MAX_RUNS:
                        self._outputs.popitem(last=False)
                entry[1].append(item)
        return ToolGuardrailFunctionOutput.allow()

    # -- needs_approval
    def needs_approval_for(self, tool_name: str, agent: Optional[Any] = None) -> Callable[[Any, dict[str, Any], str], Any]:
        """A FunctionTool ``needs_approval`` function for the tool named
        ``tool_name``: it asks the PDP and returns True on REQUIRE_APPROVAL,
        so the SDK interrupts the run. The decision is kept for the guardrail,
        so each call is decided (and rate-limited) once. ``agent`` is the SDK
        Agent (or its name) the tool belongs to, when ``agent=`` was not given
        to the guard: the SDK does not tell needs_approval which agent asks."""
        agent_obj = agent if not isinstance(agent, str) else type("_Named", (), {"name": agent})()

        async def needs_approval(wrapper: Any, params: dict[str, Any], call_id: str) -> bool:
            kw = self._request(wrapper, getattr(wrapper, "agent", None) or agent_obj, tool_name, params)
            try:
                d = await self._authorize(**kw)
            except Exception:  # noqa: BLE001 - the guardrail decides again and fails closed
                log.warning("agentpdp: needs_approval could not ask the PDP", exc_info=True)
                return False
            self._keep(call_id, d)
            return d.needs_approval

        return needs_approval

    def _keep(self, call_id: str, d: Decision) -> None:
        with self._lock:
            self._decisions[call_id] = d
            while len(self._decisions) > _MAX_KEPT:
                self._decisions.popitem(last=False)

    def approval_id(self, item: Any) -> Optional[str]:
        """The PDP approval behind an SDK approval interruption, if it is ours."""
        with self._lock:
            d = self._decisions.get(getattr(item, "call_id", None) or "")
        return d.approval_id if d is not None and d.needs_approval else None

    async def resolve_interruptions(self, result: Any, timeout: float = 300.0) -> Any:
        """Waits for the PDP's decision on each approval interruption of
        ``result``, approves or rejects it in the run state, and returns the
        state to resume with ``Runner.run(agent, state)``. Interruptions that
        are not the PDP's are left as they are."""
        state = result.to_state()
        for item in result.interruptions:
            aid = self.approval_id(item)
            if not aid:
                continue
            try:
                a = await self._wait(aid, timeout)
            except PDPError as e:
                state.reject(item, rejection_message=f"approval {aid} could not be checked: {e}")
                continue
            if a.approved:
                state.approve(item)
            else:
                why = "nobody approved it in time" if a.timed_out else f"the approval is {a.status.lower()}"
                if a.note:
                    why += f": {a.note}"
                state.reject(item, rejection_message=f"Tool call '{item.name}' was not run: {why}.")
        return state

    # -- the guardrail
    async def _guardrail(self, data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        tc = data.context
        call_id = tc.tool_call_id
        try:
            kw = self._request(tc, data.agent, tc.tool_name, json.loads(tc.tool_arguments or "{}") or {})
            with self._lock:
                kept = self._decisions.get(call_id)
            d = kept if kept is not None else await self._authorize(**kw)
            if d.needs_approval:
                if kept is not None:
                    sdk_approved = _sdk_approval(tc)
                    if sdk_approved is None:  # guardrail before the SDK asks: let it interrupt
                        return ToolGuardrailFunctionOutput.allow()
                    if sdk_approved is False:
                        raise ApprovalRequired(kw["tool"], d, cause="rejected")
                d = await self._approved_retry(kw, d, must_wait=kept is None)
            with self._lock:
                self._decisions.pop(call_id, None)
            if not d.allowed:
                raise ApprovalRequired(kw["tool"], d) if d.needs_approval else Denied(kw["tool"], d)
        except NotAllowed as e:
            with self._lock:
                self._decisions.pop(call_id, None)
            return ToolGuardrailFunctionOutput.reject_content(
                denial_message(e), output_info={"decision": e.decision.decision, "rules": e.rule_ids,
                                                "decision_id": e.decision_id, "approval_id": e.decision.approval_id})
        except Exception as e:  # noqa: BLE001 - fail closed on any error
            return ToolGuardrailFunctionOutput.reject_content(
                f"Tool call '{tc.tool_name}' was not run: authorization failed ({e}).", output_info={"error": str(e)})
        if self.report and d.decision_id:
            with self._lock:
                self._allowed[call_id] = (d, kw["agent"])
                while len(self._allowed) > _MAX_KEPT:
                    self._allowed.popitem(last=False)
        return ToolGuardrailFunctionOutput.allow(output_info={"decision_id": d.decision_id})

    async def _approved_retry(self, kw: dict[str, Any], d: Decision, *, must_wait: bool) -> Decision:
        """Waits (when configured, or needed) for the PDP approval of ``d``,
        then retries the call with its id; raises ApprovalRequired otherwise."""
        if not d.approval_id:
            raise ApprovalRequired(kw["tool"], d, cause="the PDP created no approval")
        wait = self.wait_approval or 0
        if must_wait and wait <= 0:
            raise ApprovalRequired(kw["tool"], d)
        if wait > 0:
            try:
                a = await self._wait(d.approval_id, wait)
            except PDPError as e:
                raise ApprovalRequired(kw["tool"], d, cause=str(e)) from e
            if not a.approved:
                if a.status in ("REJECTED", "EXPIRED"):
                    raise Denied(kw["tool"], dataclasses.replace(d, decision="DENY"))
                raise ApprovalRequired(kw["tool"], d, timed_out=a.timed_out)
        return await self._authorize(**kw, approval_id=d.approval_id)

    def _report(self, d: Decision, agent: Optional[str], output: str) -> None:
        failed = output.startswith("An error occurred while running the tool")
        try:
            self.client.report_outcome_background(d.decision_id, "failed" if failed else "succeeded",
                                                  output[:1024] if failed else "", agent=agent)
        except Exception:  # noqa: BLE001 - reporting never fails the call
            pass

    # -- wiring
    def protect_tool(self, tool: FunctionTool, *, agent: Optional[Any] = None, approvals: bool = True) -> FunctionTool:
        """Adds the guardrail (and, with approvals, needs_approval) to a tool of
        ``agent`` (an SDK Agent or its name; see needs_approval_for)."""
        guards = list(tool.tool_input_guardrails or [])
        if self.input_guardrail not in guards:
            guards.append(self.input_guardrail)
        tool.tool_input_guardrails = guards
        outs = list(tool.tool_output_guardrails or [])
        if self.output_guardrail not in outs:
            outs.append(self.output_guardrail)
        tool.tool_output_guardrails = outs
        if approvals:
            tool.needs_approval = self.needs_approval_for(tool.name, agent)
        return tool

    def protect(self, agent: Agent, *, approvals: bool = True) -> Agent:
        """Protects every function tool of ``agent``; returns the agent."""
        for t in agent.tools:
            if isinstance(t, FunctionTool):
                self.protect_tool(t, agent=agent, approvals=approvals)
        return agent


def _sdk_approval(tc: Any) -> Optional[bool]:
    try:
        return tc.is_tool_approved(tc.tool_name, tc.tool_call_id)
    except Exception:  # noqa: BLE001 - an SDK without it
        return None
