"""CrewAI adapter: a pre-tool-call hook that asks the PDP before every tool call.

    from agentpdp.crewai import PDPToolHooks
    hooks = PDPToolHooks(pdp, agent="email-agent").register()   # global, every crew
    crew.kickoff()
    hooks.unregister()

It uses CrewAI's interception points (``crewai.hooks``): the PRE_TOOL_CALL hook
raises ``HookAborted`` when the call is not allowed, so CrewAI does not run the
tool; the POST_TOOL_CALL hook, which CrewAI runs for blocked calls too,
replaces CrewAI's generic "blocked by hook" text with the PDP's reasons, so the
model sees why, and reports the outcome of calls that ran. CrewAI swallows any
other exception a hook raises (and runs the tool), so every failure here is
turned into HookAborted: fail closed.

Identity: the agent id is ``agent=`` (a value or a function of the hook
context), else the CrewAI agent's role as a slug ("Support agent" ->
"support-agent"). The principal is ``principal=`` or agentpdp.call_context's.
The session is ``session_id=``, else the crew's id. The latest tool results of
the same agent in the same session are sent as untrusted ``inputs``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict, deque
from typing import Any, Callable, Mapping, Optional, Union

from crewai.hooks import HookAborted, InterceptionPoint, register_hook, unregister_hook

from agentpdp._types import Decision, Input, current_context
from agentpdp.client import Client
from agentpdp.errors import NotAllowed, denial_message
from agentpdp.guard import report_in_background

__all__ = ["PDPToolHooks", "BLOCKED_PREFIX"]

FRAMEWORK = "crewai"
#: The text CrewAI puts in place of a blocked tool's result.
BLOCKED_PREFIX = "Tool execution blocked by hook"
_MAX_INPUT_CHARS = 64 * 1024
_MAX_SESSIONS = 1024

Resolver = Union[str, Callable[[Any], Optional[str]], None]


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


class PDPToolHooks:
    """PRE/POST_TOOL_CALL hooks that put the PDP in front of every CrewAI tool.

    Args:
        client: a sync ``agentpdp.Client`` (CrewAI hooks are synchronous).
        agent, principal, session_id: values or functions of the
            ToolCallHookContext.
        tool_name: maps CrewAI tool names to policy tool names (dict or function).
        wait_approval: seconds to wait for a human on REQUIRE_APPROVAL (this
            blocks the agent's thread), then retry with the approval id.
        agents, tools: only guard these CrewAI agent roles / tool names.
        max_inputs: how many recent tool results to send as inputs.
    """

    def __init__(
        self,
        client: Client,
        *,
        agent: Resolver = None,
        principal: Resolver = None,
        session_id: Resolver = None,
        tool_name: Union[Mapping[str, str], Callable[[str], str], None] = None,
        wait_approval: Optional[float] = None,
        agents: Optional[list[str]] = None,
        tools: Optional[list[str]] = None,
        max_inputs: int = 5,
        report: bool = True,
    ):
        if not isinstance(client, Client):
            raise TypeError("PDPToolHooks needs a sync agentpdp.Client: CrewAI's hooks are synchronous")
        self.client = client
        self.agent = agent
        self.principal = principal
        self.session_id = session_id
        self.tool_name = tool_name
        self.wait_approval = wait_approval
        self.agents = set(agents) if agents else None
        self.tools = set(tools) if tools else None
        self.max_inputs = max_inputs
        self.report = report
        self._lock = threading.Lock()
        # id(tool_input) -> (tool_input, agent id, Decision | None, refusal text | None)
        self._pending: dict[int, tuple[Any, str, Optional[Decision], Optional[str]]] = {}
        self._recent: OrderedDict[tuple, deque] = OrderedDict()
        self._registered = False

    # -- registration
    def register(self) -> "PDPToolHooks":
        """Registers both hooks globally (every crew in the process)."""
        if not self._registered:
            register_hook(InterceptionPoint.PRE_TOOL_CALL, self.before_tool_call)
            register_hook(InterceptionPoint.POST_TOOL_CALL, self.after_tool_call)
            self._registered = True
        return self

    def unregister(self) -> None:
        if self._registered:
            unregister_hook(InterceptionPoint.PRE_TOOL_CALL, self.before_tool_call)
            unregister_hook(InterceptionPoint.POST_TOOL_CALL, self.after_tool_call)
            self._registered = False

    def __enter__(self) -> "PDPToolHooks":
        return self.register()

    def __exit__(self, *exc: Any) -> None:
        self.unregister()

    # -- mapping
    def _resolve(self, r: Resolver, ctx: Any) -> Optional[str]:
        return r(ctx) if callable(r) else r

    def _applies(self, ctx: Any) -> bool:
        if self.tools is not None and ctx.tool_name not in self.tools:
            return False
        role = getattr(ctx.agent, "role", None)
        if self.agents is not None and role not in self.agents:
            return False
        return True

    def _agent_id(self, ctx: Any) -> str:
        a = self._resolve(self.agent, ctx) or current_context().agent
        if a:
            return a
        role = getattr(ctx.agent, "role", None)
        return _slug(role) if role else ""

    def _session(self, ctx: Any) -> Optional[str]:
        s = self._resolve(self.session_id, ctx)
        if s is None:
            s = current_context().session_id
        if s is None and ctx.crew is not None and getattr(ctx.crew, "id", None) is not None:
            s = str(ctx.crew.id)
        if s is None and ctx.task is not None and getattr(ctx.task, "id", None) is not None:
            s = str(ctx.task.id)
        return s

    def _policy_tool(self, name: str) -> str:
        if callable(self.tool_name):
            return self.tool_name(name)
        if isinstance(self.tool_name, Mapping):
            return self.tool_name.get(name, name)
        return name

    def _inputs_key(self, agent: str, session: Optional[str]) -> tuple:
        return (agent, session)

    # -- hooks
    def before_tool_call(self, ctx: Any) -> None:
        """PRE_TOOL_CALL: raises HookAborted unless the PDP answers ALLOW."""
        if not self._applies(ctx):
            return None
        agent = ""
        try:
            agent = self._agent_id(ctx)
            session = self._session(ctx)
            with self._lock:
                recent = list(self._recent.get(self._inputs_key(agent, session), ()))
            d = self.client.require(
                agent=agent, tool=self._policy_tool(ctx.tool_name), args=dict(ctx.tool_input or {}),
                principal=self._resolve(self.principal, ctx), session_id=session, framework=FRAMEWORK,
                inputs=recent or None, wait_approval=self.wait_approval,
            )
        except NotAllowed as e:
            self._remember(ctx, agent, None, denial_message(e))
            raise HookAborted(reason=denial_message(e), source="agentpdp") from e
        except Exception as e:  # noqa: BLE001 - CrewAI would run the tool: fail closed instead
            msg = f"Tool call '{ctx.tool_name}' was not run: authorization failed ({e})."
            self._remember(ctx, agent, None, msg)
            raise HookAborted(reason=msg, source="agentpdp") from e
        self._remember(ctx, agent, d, None)
        return None

    def _remember(self, ctx: Any, agent: str, d: Optional[Decision], refusal: Optional[str]) -> None:
        with self._lock:
            self._pending[id(ctx.tool_input)] = (ctx.tool_input, agent, d, refusal)

    def after_tool_call(self, ctx: Any) -> Optional[str]:
        """POST_TOOL_CALL: explains refusals to the model; reports outcomes;
        remembers the result as untrusted input for the next call."""
        with self._lock:
            entry = self._pending.pop(id(ctx.tool_input), None)
        if entry is None or entry[0] is not ctx.tool_input:
            return None
        _, agent, d, refusal = entry
        result = ctx.tool_result
        if refusal is not None:
            if result is None or str(result).startswith(BLOCKED_PREFIX):
                return refusal
            return None
        if d is not None and self.report:
            text = str(result) if result is not None else ""
            failed = text.startswith("Error executing tool")
            report_in_background(self.client, d, agent, "failed" if failed else "succeeded",
                                 text[:1024] if failed else "")
        if self.max_inputs and result is not None:
            key = self._inputs_key(agent, self._session(ctx))
            with self._lock:
                q = self._recent.get(key)
                if q is None:
                    q = self._recent[key] = deque(maxlen=self.max_inputs)
                    while len(self._recent) > _MAX_SESSIONS:
                        self._recent.popitem(last=False)
                q.append(Input(source=f"tool:{ctx.tool_name}", text=str(result)[:_MAX_INPUT_CHARS]))
        return None
