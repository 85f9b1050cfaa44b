"""LangChain 1.x / LangGraph adapter.

``PDPMiddleware`` is an agent middleware: ``create_agent(..., middleware=[PDPMiddleware(pdp,
agent="email-agent")])`` asks the PDP before every tool call and, when the call is
not allowed, answers the model with an error ToolMessage that says why instead
of running the tool. ``guard_tool`` wraps one BaseTool the same way for code
that builds its own graph or calls tools directly.

Identity: the agent id is ``agent=`` or the agent's ``name`` (create_agent(name=...)).
The principal is ``principal=`` (a value or a function of the tool-call request),
else ``user_id`` from the runtime context (create_agent(context_schema=...)), else
``configurable.user_id`` in the run config. The session is ``configurable.thread_id``.
The contents of the tool results since the last human message are sent as
untrusted ``inputs``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Any, Callable, Optional, Union

from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool, ToolException

from agentpdp._types import Decision, Input, current_context, summarize_error
from agentpdp.client import AsyncClient, Client
from agentpdp.errors import NotAllowed, denial_message
from agentpdp.guard import report_in_background

__all__ = ["PDPMiddleware", "guard_tool", "denial_message"]

FRAMEWORK = "langchain"
_MAX_INPUT_CHARS = 64 * 1024


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _config_of(request: Any) -> Mapping[str, Any]:
    cfg = _get(getattr(request, "runtime", None), "config")
    if cfg:
        return cfg
    try:
        from langgraph.config import get_config

        return get_config()
    except Exception:  # noqa: BLE001 - outside a runnable context
        return {}


def _recent_tool_outputs(state: Any, limit: int) -> list[Input]:
    """The contents of the ToolMessages after the last human message."""
    messages = _get(state, "messages") or []
    out: list[Input] = []
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            break
        if isinstance(m, ToolMessage):
            text = m.content if isinstance(m.content, str) else str(m.content)
            out.append(Input(source=f"tool:{m.name or 'unknown'}", text=text[:_MAX_INPUT_CHARS]))
            if len(out) >= limit:
                break
    out.reverse()
    return out


Resolver = Union[str, Callable[[Any], Optional[str]], None]


class PDPMiddleware(AgentMiddleware):
    """Asks the PDP before every tool call of a LangChain agent.

    Args:
        client: an ``agentpdp.Client`` (used by ``invoke``) or ``AsyncClient``
            (used by ``ainvoke``; a sync Client works there too, off the loop).
        agent: the agent id in policies; default: the agent's name.
        principal, session_id: values or functions of the ToolCallRequest.
        tool_name: maps the LangChain tool name to the policy's tool name
            (a dict or a function), e.g. {"send_email": "gmail.send"}.
        wait_approval: seconds to wait for a human on REQUIRE_APPROVAL, then
            retry with the approval id; None answers the model at once.
        max_inputs: how many recent tool results to send as untrusted inputs.
        report: report each tool's outcome to the audit trail.
    """

    def __init__(
        self,
        client: Union[Client, AsyncClient],
        *,
        agent: Optional[str] = None,
        principal: Resolver = None,
        session_id: Resolver = None,
        tool_name: Union[Mapping[str, str], Callable[[str], str], None] = None,
        wait_approval: Optional[float] = None,
        max_inputs: int = 5,
        report: bool = True,
    ):
        super().__init__()
        self.client = client
        self.agent = agent
        self.principal = principal
        self.session_id = session_id
        self.tool_name = tool_name
        self.wait_approval = wait_approval
        self.max_inputs = max_inputs
        self.report = report

    # -- mapping a tool call to a request
    def _policy_tool(self, name: str) -> str:
        if callable(self.tool_name):
            return self.tool_name(name)
        if isinstance(self.tool_name, Mapping):
            return self.tool_name.get(name, name)
        return name

    def request_kwargs(self, request: Any) -> dict[str, Any]:
        """The authorize() arguments for a ToolCallRequest."""
        call = request.tool_call
        cfg = _config_of(request)
        configurable = _get(cfg, "configurable") or {}
        metadata = _get(cfg, "metadata") or {}
        runtime_ctx = _get(getattr(request, "runtime", None), "context")
        ctx = current_context()

        agent = self.agent or metadata.get("lc_agent_name") or ctx.agent
        principal = self.principal(request) if callable(self.principal) else self.principal
        if principal is None:
            principal = (_get(runtime_ctx, "user_id") or configurable.get("user_id")
                         or metadata.get("user_id"))
        session = self.session_id(request) if callable(self.session_id) else self.session_id
        if session is None:
            session = configurable.get("thread_id")
        return dict(
            agent=agent, tool=self._policy_tool(call["name"]), args=call.get("args") or {},
            principal=principal, session_id=session, framework=FRAMEWORK,
            inputs=_recent_tool_outputs(request.state, self.max_inputs) if self.max_inputs else None,
            wait_approval=self.wait_approval,
        )

    @staticmethod
    def _refusal(request: Any, e: NotAllowed) -> ToolMessage:
        call = request.tool_call
        return ToolMessage(content=denial_message(e), tool_call_id=call["id"], name=call["name"],
                           status="error", artifact={"agentpdp": {"decision": e.decision.decision,
                                                                  "rules": e.rule_ids,
                                                                  "decision_id": e.decision_id,
                                                                  "approval_id": e.decision.approval_id}})

    @staticmethod
    def _error(request: Any, err: Exception) -> ToolMessage:
        call = request.tool_call
        return ToolMessage(content=f"Tool call '{call['name']}' was not run: authorization failed ({err}).",
                           tool_call_id=call["id"], name=call["name"], status="error")

    def _after(self, d: Decision, agent: Optional[str], result: Any) -> None:
        if not self.report:
            return
        failed = isinstance(result, ToolMessage) and result.status == "error"
        summary = str(result.content)[:1024] if failed else ""
        report_in_background(self.client, d, agent, "failed" if failed else "succeeded", summary)

    # -- the hooks
    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        if not isinstance(self.client, Client):
            raise RuntimeError("PDPMiddleware: a sync run (invoke/stream) needs a sync agentpdp.Client")
        try:
            kw = self.request_kwargs(request)
            d = self.client.require(**kw)
        except NotAllowed as e:
            return self._refusal(request, e)
        except Exception as e:  # noqa: BLE001 - fail closed on any error
            return self._error(request, e)
        result = handler(request)
        self._after(d, kw["agent"], result)
        return result

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        try:
            kw = self.request_kwargs(request)
            if isinstance(self.client, AsyncClient):
                d = await self.client.require(**kw)
            else:
                d = await asyncio.to_thread(self.client.require, **kw)
        except NotAllowed as e:
            return self._refusal(request, e)
        except Exception as e:  # noqa: BLE001 - fail closed on any error
            return self._error(request, e)
        result = await handler(request)
        self._after(d, kw["agent"], result)
        return result


def guard_tool(
    tool: BaseTool,
    client: Union[Client, AsyncClient],
    *,
    agent: str,
    policy_tool: Optional[str] = None,
    principal: Optional[str] = None,
    wait_approval: Optional[float] = None,
    report: bool = True,
) -> BaseTool:
    """Wraps a BaseTool so it runs only on ALLOW. A refused call raises a
    ToolException that the returned tool (handle_tool_error=True) turns into
    an error result the model sees. Principal and session come from the run
    config's ``configurable`` (user_id, thread_id) unless given."""
    name = policy_tool or tool.name

    def kwargs_for(args: dict, config: Optional[RunnableConfig]) -> dict:
        configurable = (config or {}).get("configurable") or {}
        return dict(agent=agent, tool=name, args=args, framework=FRAMEWORK, wait_approval=wait_approval,
                    principal=principal if principal is not None else configurable.get("user_id"),
                    session_id=configurable.get("thread_id"))

    def report_result(d: Decision, e: Optional[BaseException] = None) -> None:
        if not report:
            return
        if e is None:
            report_in_background(client, d, agent, "succeeded", "")
        else:
            report_in_background(client, d, agent, "failed", summarize_error(e, 1024))

    def outcome(d: Decision, fn: Callable[[], Any]) -> Any:
        try:
            result = fn()
        except BaseException as e:
            report_result(d, e)
            raise
        report_result(d)
        return result

    def _run(config: RunnableConfig, **args: Any) -> Any:
        if not isinstance(client, Client):
            raise ToolException("agentpdp: a sync tool call needs a sync agentpdp.Client")
        try:
            d = client.require(**kwargs_for(args, config))
        except NotAllowed as e:
            raise ToolException(denial_message(e)) from e
        return outcome(d, lambda: tool.invoke(args, config))

    async def _arun(config: RunnableConfig, **args: Any) -> Any:
        try:
            if isinstance(client, AsyncClient):
                d = await client.require(**kwargs_for(args, config))
            else:
                d = await asyncio.to_thread(client.require, **kwargs_for(args, config))
        except NotAllowed as e:
            raise ToolException(denial_message(e)) from e
        try:
            result = await tool.ainvoke(args, config)
        except BaseException as e:
            report_result(d, e)
            raise
        report_result(d)
        return result

    return StructuredTool.from_function(
        func=_run, coroutine=_arun, name=tool.name, description=tool.description,
        args_schema=tool.args_schema, return_direct=tool.return_direct, handle_tool_error=True,
    )
