"""What a guarded call raises instead of running the tool."""

from __future__ import annotations

from typing import Optional

from agentpdp._types import Decision, Reason


class AgentPDPError(Exception):
    """Base of the errors this package raises."""


class NotAllowed(AgentPDPError):
    """The tool did not run: the PDP did not answer ALLOW."""

    def __init__(self, tool: str, decision: Decision, message: Optional[str] = None):
        self.tool = tool
        self.decision = decision
        super().__init__(message or f"{tool}: {decision.decision}: {decision.explain()}")

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return self.decision.reasons

    @property
    def rule_ids(self) -> list[str]:
        return self.decision.rule_ids

    @property
    def decision_id(self) -> str:
        return self.decision.decision_id


class Denied(NotAllowed):
    """The PDP denied the call, or could not be asked (``unavailable``)."""

    def __init__(self, tool: str, decision: Decision):
        super().__init__(tool, decision, f"agentpdp: {tool} denied: {decision.explain()}")

    @property
    def unavailable(self) -> bool:
        return self.decision.unavailable


class ApprovalRequired(NotAllowed):
    """The call needs a human's approval that was not (yet) given.

    ``approval_id`` names the pending approval; retry with it once approved.
    ``timed_out`` is set when the guard waited and nobody decided in time.
    """

    def __init__(self, tool: str, decision: Decision, *, timed_out: bool = False, cause: Optional[str] = None):
        self.approval_id = decision.approval_id
        self.timed_out = timed_out
        self.cause = cause
        msg = f"agentpdp: {tool} requires approval"
        if self.approval_id:
            msg += f" {self.approval_id}"
        msg += f": {decision.explain()}"
        if timed_out:
            msg += " (timed out waiting)"
        if cause:
            msg += f" ({cause})"
        super().__init__(tool, decision, msg)


class PDPError(AgentPDPError):
    """A call other than Authorize failed (WaitApproval, ScanContent...)."""

    def __init__(self, message: str, code: Optional[str] = None):
        self.code = code
        super().__init__(message)


def denial_message(e: NotAllowed) -> str:
    """What the model is told when a call was not run."""
    if isinstance(e, ApprovalRequired):
        what = "needs a human's approval"
        if e.approval_id:
            what += f" (approval {e.approval_id})"
        if e.timed_out:
            what += " and nobody approved it in time"
        return (f"Tool call '{e.tool}' was not run: it {what}. Reason: {e.decision.explain()}. "
                "Tell the user it awaits approval; do not try to work around it.")
    if isinstance(e, Denied) and e.unavailable:
        return (f"Tool call '{e.tool}' was not run: the authorization service is unreachable, so it is "
                "denied for safety. Try again later.")
    return (f"Tool call '{e.tool}' was denied by policy and was not run. Reason: {e.decision.explain()}. "
            "Do not retry the same call.")
