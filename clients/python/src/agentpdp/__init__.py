"""agentpdp: ask a policy decision point before every tool call an AI agent makes.

    import agentpdp

    pdp = agentpdp.Client("127.0.0.1:8181")            # fail closed, 250 ms timeout
    d = pdp.authorize(agent="email-agent", tool="gmail.send",
                      args={"to": ["alice@customer.com"]}, principal="u1")
    if d.allowed: ...

    @agentpdp.guarded(tool="gmail.send", agent="email-agent", client=pdp)
    def send_email(to: list[str], subject: str, body: str) -> str: ...

Framework adapters: agentpdp.langchain, agentpdp.crewai, agentpdp.openai_agents.
"""

from agentpdp._types import (
    ALLOW,
    DENY,
    REASON_APPROVAL_EXPIRED,
    REASON_APPROVAL_REJECTED,
    REASON_INVALID_REQUEST,
    REASON_UNAVAILABLE,
    REQUIRE_APPROVAL,
    Approval,
    ContentScan,
    Decision,
    Input,
    PIIMatch,
    Reason,
    call_context,
)
from agentpdp.client import AsyncClient, Client
from agentpdp.errors import AgentPDPError, ApprovalRequired, Denied, NotAllowed, PDPError
from agentpdp.guard import guarded

__version__ = "0.1.0"

__all__ = [
    "ALLOW",
    "DENY",
    "REQUIRE_APPROVAL",
    "REASON_UNAVAILABLE",
    "REASON_INVALID_REQUEST",
    "REASON_APPROVAL_REJECTED",
    "REASON_APPROVAL_EXPIRED",
    "AgentPDPError",
    "Approval",
    "ApprovalRequired",
    "AsyncClient",
    "Client",
    "ContentScan",
    "Decision",
    "Denied",
    "Input",
    "NotAllowed",
    "PDPError",
    "PIIMatch",
    "Reason",
    "call_context",
    "guarded",
]
