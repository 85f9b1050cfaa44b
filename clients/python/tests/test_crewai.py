"""agentpdp.crewai through a real Crew.kickoff(): CrewAI's agent executor
parses the scripted LLM's ReAct answers and dispatches the tools, running
the registered hooks. No network, no LLM."""

from __future__ import annotations

import json

import pytest
from crewai import Agent, Crew, Task
from crewai.llms.base_llm import BaseLLM
from crewai.tools import tool

import agentpdp
from agentpdp.crewai import PDPToolHooks


class ScriptedLLM(BaseLLM):
    """Answers with the scripted ReAct texts in order; records every prompt."""

    def __init__(self, script: list[str], **kw):
        super().__init__(model="scripted", **kw)
        self._script = list(script)
        self.seen: list = []

    def call(self, messages, tools=None, callbacks=None, available_functions=None, from_task=None,
             from_agent=None, response_model=None):
        self.seen.append(messages)
        if not self._script:
            return "Thought: nothing left\nFinal Answer: done"
        return self._script.pop(0)

    def supports_function_calling(self) -> bool:
        return False


def act(tool_name: str, args: dict) -> str:
    return f"Thought: I will use {tool_name}\nAction: {tool_name}\nAction Input: {json.dumps(args)}"


FINAL = "Thought: I am done\nFinal Answer: done"


def make_tools(ran: list):
    @tool("echo")
    def echo(text: str) -> str:
        """Echo the text back."""
        ran.append(("echo", text))
        return "echo: " + text

    @tool("delete")
    def delete(id: str) -> str:
        """Delete a thing."""
        ran.append(("delete", id))
        return "deleted"

    @tool("send_money")
    def send_money(to: str, amount: int) -> str:
        """Pay someone."""
        ran.append(("send_money", to))
        return "paid"

    return [echo, delete, send_money]


def kickoff(script: list[str], ran: list, role: str = "Test agent"):
    llm = ScriptedLLM(script)
    agent = Agent(role=role, goal="test the guard", backstory="a test", tools=make_tools(ran), llm=llm)
    crew = Crew(agents=[agent], tasks=[Task(description="do it", expected_output="done", agent=agent)])
    return crew.kickoff(), llm


def observations(llm: ScriptedLLM) -> str:
    return "\n".join(str(m.get("content", "")) for m in llm.seen[-1] if isinstance(m, dict))


def test_allowed_runs_denied_does_not_and_the_model_sees_why(pdp, principal):
    ran: list = []
    with agentpdp.Client(pdp.addr) as c, PDPToolHooks(c, principal=principal):
        result, llm = kickoff([act("echo", {"text": "hi"}), act("delete", {"id": "m1"}), FINAL], ran)
    assert str(result) == "done"
    assert ran == [("echo", "hi")]
    seen = observations(llm)
    assert "echo: hi" in seen
    assert "never-delete" in seen and "deleting is never allowed" in seen


def test_approval_waits_then_runs(pdp, principal):
    ran: list = []
    with agentpdp.Client(pdp.addr) as c, PDPToolHooks(c, agent="test-agent", principal=principal, wait_approval=10):
        approver = pdp.decide_in_background(agent="test-agent", tool="send_money", principal=principal)
        kickoff([act("send_money", {"to": "bob", "amount": 5}), FINAL], ran, role="Payments clerk")
        approver.check()
    assert ran == [("send_money", "bob")]


def test_approval_rejected_does_not_run(pdp, principal):
    ran: list = []
    with agentpdp.Client(pdp.addr) as c, PDPToolHooks(c, agent="test-agent", principal=principal, wait_approval=10):
        rejecter = pdp.decide_in_background(agent="test-agent", tool="send_money", principal=principal,
                                            approve=False)
        _, llm = kickoff([act("send_money", {"to": "mallory", "amount": 500}), FINAL], ran)
        rejecter.check()
    assert ran == []
    assert agentpdp.REASON_APPROVAL_REJECTED in observations(llm)


def test_pdp_down_fails_closed(down_addr, principal):
    ran: list = []
    with agentpdp.Client(down_addr) as c, PDPToolHooks(c, principal=principal):
        _, llm = kickoff([act("echo", {"text": "hi"}), FINAL], ran)
    assert ran == []
    assert "unreachable" in observations(llm)


def test_hook_errors_fail_closed(pdp, principal):
    """CrewAI runs the tool when a hook raises anything but HookAborted; the
    adapter turns its own failures into HookAborted."""
    ran: list = []

    def broken(ctx):
        raise RuntimeError("boom")

    with agentpdp.Client(pdp.addr) as c, PDPToolHooks(c, principal=broken):
        _, llm = kickoff([act("echo", {"text": "hi"}), FINAL], ran)
    assert ran == []
    assert "authorization failed" in observations(llm)


def test_previous_tool_results_are_inputs(pdp, principal):
    ran: list = []
    sent = []

    class Recording(agentpdp.Client):
        def authorize_request(self, req, **kw):
            sent.append([(i.source, i.text) for i in req.inputs])
            return super().authorize_request(req, **kw)

    with Recording(pdp.addr) as c, PDPToolHooks(c, principal=principal):
        kickoff([act("echo", {"text": "first"}), act("echo", {"text": "second"}), FINAL], ran)
    assert ran == [("echo", "first"), ("echo", "second")]
    assert sent[0] == [] and sent[1] == [("tool:echo", "echo: first")]


def test_unregister_removes_the_hooks(pdp, principal):
    from crewai.hooks import InterceptionPoint, get_hooks

    with agentpdp.Client(pdp.addr) as c:
        h = PDPToolHooks(c).register()
        assert h.before_tool_call in get_hooks(InterceptionPoint.PRE_TOOL_CALL)
        h.unregister()
        assert h.before_tool_call not in get_hooks(InterceptionPoint.PRE_TOOL_CALL)
        with pytest.raises(TypeError):
            PDPToolHooks(agentpdp.AsyncClient(pdp.addr))
