"""agentpdp.openai_agents through the Agents SDK's own Runner: a scripted
Model subclass emits the tool calls; the SDK runs the guardrails, the
approval interruptions and the tools. No network, no LLM."""

from __future__ import annotations

import json

import pytest
from agents import Agent, Runner, Usage, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

import agentpdp
from agentpdp.openai_agents import PDPToolGuard

set_tracing_disabled(True)


class ScriptedModel(Model):
    """Returns the scripted outputs turn by turn; records every input."""

    def __init__(self, turns):
        self.turns = list(turns)
        self.seen: list = []

    async def get_response(self, system_instructions, input, model_settings, tools, output_schema, handoffs,
                           tracing, *, previous_response_id=None, conversation_id=None, prompt=None, **kw):
        self.seen.append(input)
        out = self.turns.pop(0) if self.turns else [message("done")]
        return ModelResponse(output=out, usage=Usage(), response_id=None)

    def stream_response(self, *a, **kw):  # pragma: no cover - not used
        raise NotImplementedError


def call(name: str, args: dict, call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(type="function_call", name=name, arguments=json.dumps(args), call_id=call_id,
                                    id="fc_" + call_id, status="completed")


def message(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(id="msg_1", type="message", role="assistant", status="completed",
                                 content=[ResponseOutputText(type="output_text", text=text, annotations=[])])


def make_tools(ran: list):
    @function_tool
    def echo(text: str) -> str:
        """Echo the text back."""
        ran.append(("echo", text))
        return "echo: " + text

    @function_tool
    def delete(id: str) -> str:
        """Delete a thing."""
        ran.append(("delete", id))
        return "deleted"

    @function_tool
    def send_money(to: str, amount: int) -> str:
        """Pay someone."""
        ran.append(("send_money", to))
        return "paid"

    return [echo, delete, send_money]


def outputs(model: ScriptedModel) -> dict[str, str]:
    """The tool outputs the model saw on its last turn, by call id."""
    items = model.seen[-1] if isinstance(model.seen[-1], list) else []
    return {i["call_id"]: i["output"] for i in items
            if isinstance(i, dict) and i.get("type") == "function_call_output"}


class Ctx:
    def __init__(self, user_id: str):
        self.user_id = user_id
        self.session_id = "s-" + user_id


async def test_allowed_runs_denied_does_not(pdp, principal):
    ran: list = []
    model = ScriptedModel([[call("echo", {"text": "hi"}, "c1"), call("delete", {"id": "m1"}, "c2")]])
    async with agentpdp.AsyncClient(pdp.addr) as c:
        guard = PDPToolGuard(c)
        agent = guard.protect(Agent(name="test-agent", tools=make_tools(ran), model=model))
        result = await Runner.run(agent, "go", context=Ctx(principal))
    assert result.final_output == "done"
    assert ran == [("echo", "hi")]
    seen = outputs(model)
    assert seen["c1"] == "echo: hi"
    assert "never-delete" in seen["c2"] and "deleting is never allowed" in seen["c2"]


async def test_approval_interrupts_then_runs_once_the_pdp_approves(pdp, principal):
    ran: list = []
    model = ScriptedModel([[call("send_money", {"to": "bob", "amount": 5}, "c1")]])
    async with agentpdp.AsyncClient(pdp.addr) as c:
        guard = PDPToolGuard(c)
        agent = guard.protect(Agent(name="test-agent", tools=make_tools(ran), model=model))
        result = await Runner.run(agent, "go", context=Ctx(principal))
        assert ran == [] and len(result.interruptions) == 1
        assert guard.approval_id(result.interruptions[0])
        approver = pdp.decide_in_background(agent="test-agent", tool="send_money", principal=principal)
        state = await guard.resolve_interruptions(result, timeout=10)
        approver.check()
        result = await Runner.run(agent, state)
    assert ran == [("send_money", "bob")]
    assert result.final_output == "done"


async def test_approval_rejected_on_the_pdp_rejects_the_interruption(pdp, principal):
    ran: list = []
    model = ScriptedModel([[call("send_money", {"to": "mallory", "amount": 500}, "c1")]])
    async with agentpdp.AsyncClient(pdp.addr) as c:
        guard = PDPToolGuard(c)
        agent = guard.protect(Agent(name="test-agent", tools=make_tools(ran), model=model))
        result = await Runner.run(agent, "go", context=Ctx(principal))
        rejecter = pdp.decide_in_background(agent="test-agent", tool="send_money", principal=principal,
                                            approve=False)
        state = await guard.resolve_interruptions(result, timeout=10)
        rejecter.check()
        await Runner.run(agent, state)
    assert ran == []
    assert "rejected" in outputs(model)["c1"]


async def test_guardrail_alone_waits_for_the_pdp(pdp, principal):
    """Without the SDK's approval flow (approvals=False) the guardrail waits."""
    ran: list = []
    model = ScriptedModel([[call("send_money", {"to": "bob", "amount": 5}, "c1")]])
    async with agentpdp.AsyncClient(pdp.addr) as c:
        guard = PDPToolGuard(c, wait_approval=10)
        agent = guard.protect(Agent(name="test-agent", tools=make_tools(ran), model=model), approvals=False)
        approver = pdp.decide_in_background(agent="test-agent", tool="send_money", principal=principal)
        result = await Runner.run(agent, "go", context=Ctx(principal))
        approver.check()
    assert ran == [("send_money", "bob")] and not result.interruptions


async def test_pdp_down_fails_closed(down_addr, principal):
    ran: list = []
    model = ScriptedModel([[call("echo", {"text": "hi"}, "c1")]])
    async with agentpdp.AsyncClient(down_addr) as c:
        guard = PDPToolGuard(c)
        agent = guard.protect(Agent(name="test-agent", tools=make_tools(ran), model=model))
        await Runner.run(agent, "go", context=Ctx(principal))
    assert ran == []
    assert "unreachable" in outputs(model)["c1"]


async def test_sync_client_and_email_policy(pdp, principal):
    ran: list = []

    @function_tool
    def send_email(to: list[str], subject: str, body: str) -> str:
        """Send an email."""
        ran.append(tuple(to))
        return "sent"

    model = ScriptedModel([[call("send_email", {"to": ["alice@customer.com"], "subject": "Re", "body": "x"}, "c1"),
                            call("send_email", {"to": ["sales@competitor.com"], "subject": "Hi", "body": "x"}, "c2")]])
    with agentpdp.Client(pdp.addr) as c:
        guard = PDPToolGuard(c, principal=principal, tool_name={"send_email": "gmail.send"})
        agent = guard.protect(Agent(name="email-agent", tools=[send_email], model=model))
        await Runner.run(agent, "go")
    assert ran == [("alice@customer.com",)]
    seen = outputs(model)
    assert seen["c1"] == "sent" and "no-competitors" in seen["c2"]


@pytest.mark.parametrize("approvals", [True, False])
async def test_tool_outputs_are_inputs(pdp, principal, approvals):
    ran: list = []
    sent = []

    class Recording(agentpdp.AsyncClient):
        async def authorize_request(self, req, **kw):
            sent.append([i.text for i in req.inputs])
            return await super().authorize_request(req, **kw)

    model = ScriptedModel([[call("echo", {"text": "first"}, "c1")], [call("echo", {"text": "second"}, "c2")]])
    async with Recording(pdp.addr) as c:
        guard = PDPToolGuard(c)
        agent = guard.protect(Agent(name="test-agent", tools=make_tools(ran), model=model), approvals=approvals)
        await Runner.run(agent, "go", context=Ctx(principal))
    assert ran == [("echo", "first"), ("echo", "second")]
    assert sent[0] == [] and "echo: first" in sent[-1]
