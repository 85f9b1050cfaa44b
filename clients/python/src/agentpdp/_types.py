"""Plain Python views of the PDP's messages, and the conversions to and from them."""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as _dt
import enum
import json
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence, Union

from google.protobuf import struct_pb2

from agentpdp.v1 import approval_pb2, authorization_pb2, decision_pb2

ALLOW = "ALLOW"
DENY = "DENY"
REQUIRE_APPROVAL = "REQUIRE_APPROVAL"

#: Built-in reasons the client adds to decisions it makes without the PDP.
REASON_UNAVAILABLE = "pdp_unavailable"
REASON_INVALID_REQUEST = "invalid_request"
REASON_APPROVAL_REJECTED = "approval_rejected"
REASON_APPROVAL_EXPIRED = "approval_expired"

_DECISIONS = {0: "UNSPECIFIED", 1: ALLOW, 2: DENY, 3: REQUIRE_APPROVAL}
_MODES = {0: "UNSPECIFIED", 1: "OBSERVE", 2: "WARN", 3: "ENFORCE"}
_EFFECTS = {0: "UNSPECIFIED", 1: ALLOW, 2: DENY, 3: REQUIRE_APPROVAL}
_APPROVAL_STATUS = {0: "UNSPECIFIED", 1: "PENDING", 2: "APPROVED", 3: "REJECTED", 4: "EXPIRED", 5: "USED"}
_OUTCOMES = {
    "succeeded": authorization_pb2.OUTCOME_STATUS_SUCCEEDED,
    "failed": authorization_pb2.OUTCOME_STATUS_FAILED,
    "skipped": authorization_pb2.OUTCOME_STATUS_SKIPPED,
}


@dataclass(frozen=True)
class Reason:
    """One matched rule, or a built-in reason (rate_limited, pdp_unavailable...)."""

    rule_id: str
    effect: str = DENY
    message: str = ""
    policy: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.message}" if self.message else self.rule_id


@dataclass(frozen=True)
class Decision:
    """The PDP's answer. Only ``decision == "ALLOW"`` permits the call."""

    decision: str
    policy_decision: str = "UNSPECIFIED"
    mode: str = "UNSPECIFIED"
    reasons: tuple[Reason, ...] = ()
    decision_id: str = ""
    policy_version: str = ""
    policy: str = ""
    approval_id: Optional[str] = None
    approval_expires_at: Optional[_dt.datetime] = None
    warning: str = ""
    trace_id: str = ""
    dry_run: bool = False
    injection_score: float = 0.0
    pii_kinds: tuple[str, ...] = ()
    eval_time: float = 0.0
    #: The raw AuthorizeResponse (None when the client decided alone).
    response: Optional[decision_pb2.AuthorizeResponse] = field(default=None, repr=False, compare=False)

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOW

    @property
    def denied(self) -> bool:
        """True for DENY and anything that is neither ALLOW nor REQUIRE_APPROVAL."""
        return self.decision not in (ALLOW, REQUIRE_APPROVAL)

    @property
    def needs_approval(self) -> bool:
        return self.decision == REQUIRE_APPROVAL

    @property
    def unavailable(self) -> bool:
        """The client decided because the PDP could not be reached."""
        return any(r.rule_id == REASON_UNAVAILABLE for r in self.reasons)

    @property
    def rule_ids(self) -> list[str]:
        return [r.rule_id for r in self.reasons]

    def explain(self, *, include_allow: bool = False) -> str:
        """The reasons as one line, e.g. "max-one-recipient: exactly one recipient..."."""
        rs = [r for r in self.reasons if include_allow or r.effect != ALLOW] or list(self.reasons)
        return "; ".join(str(r) for r in rs) or self.decision


@dataclass(frozen=True)
class Approval:
    """An approval as WaitApproval reports it."""

    id: str
    status: str  # PENDING, APPROVED, REJECTED, EXPIRED, USED
    timed_out: bool = False
    agent_id: str = ""
    principal_id: str = ""
    tool: str = ""
    approver: str = ""
    note: str = ""
    decision_id: str = ""
    reasons: tuple[Reason, ...] = ()

    @property
    def approved(self) -> bool:
        return self.status == "APPROVED"


@dataclass(frozen=True)
class PIIMatch:
    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class ContentScan:
    injection_score: float
    flagged: bool
    signals: tuple[str, ...] = ()
    pii: tuple[PIIMatch, ...] = ()
    truncated: bool = False


@dataclass(frozen=True)
class Input:
    """Untrusted content that led to a call (an email body, a web page, a tool result)."""

    text: str
    source: str = ""


InputLike = Union[Input, str, Mapping[str, Any], Sequence[str]]
PrincipalLike = Union[str, Mapping[str, Any], None]
ResourceLike = Union[Mapping[str, Any], None]


# --- call context ------------------------------------------------------------

@dataclass(frozen=True)
class _CallContext:
    agent: Optional[str] = None
    principal: PrincipalLike = None
    session_id: Optional[str] = None
    inputs: tuple[Input, ...] = ()


_ctx: contextvars.ContextVar[_CallContext] = contextvars.ContextVar("agentpdp_call_context", default=_CallContext())


@contextmanager
def call_context(
    *,
    agent: Optional[str] = None,
    principal: PrincipalLike = None,
    session_id: Optional[str] = None,
    inputs: Optional[Iterable[InputLike]] = None,
) -> Iterator[None]:
    """Sets who the guarded calls inside the block act for (and what untrusted
    input led to them) without threading it through every call::

        with agentpdp.call_context(principal="u1", session_id="s1"):
            send_email(to=["alice@customer.com"], subject="Re", body="Thanks")

    Explicit arguments to ``authorize`` win; inputs add up across nested blocks.
    """
    cur = _ctx.get()
    new = _CallContext(
        agent=agent if agent is not None else cur.agent,
        principal=principal if principal is not None else cur.principal,
        session_id=session_id if session_id is not None else cur.session_id,
        inputs=cur.inputs + tuple(to_input(i) for i in (inputs or ())),
    )
    token = _ctx.set(new)
    try:
        yield
    finally:
        _ctx.reset(token)


def current_context() -> _CallContext:
    return _ctx.get()


# --- conversions ---------------------------------------------------------------

def jsonable(v: Any) -> Any:
    """Turns tool arguments into JSON values: pydantic models, dataclasses,
    enums, dates, sets and tuples are converted; anything else becomes str."""
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [jsonable(x) for x in v]
    if isinstance(v, enum.Enum):
        return jsonable(v.value)
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    dump = getattr(v, "model_dump", None)  # pydantic v2
    if callable(dump):
        try:
            return jsonable(dump(mode="json"))
        except TypeError:
            return jsonable(dump())
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return jsonable(dataclasses.asdict(v))
    return str(v)


def to_struct(d: Optional[Mapping[str, Any]]) -> Optional[struct_pb2.Struct]:
    if d is None:
        return None
    if isinstance(d, struct_pb2.Struct):
        return d
    if not isinstance(d, Mapping):
        d = jsonable(d)
        if not isinstance(d, Mapping):
            raise TypeError("args must be a mapping (a JSON object), got %s" % type(d).__name__)
    s = struct_pb2.Struct()
    try:
        s.update(d)
    except (ValueError, TypeError, AttributeError):
        s = struct_pb2.Struct()
        s.update(jsonable(d))
    return s


def to_input(i: InputLike) -> Input:
    if isinstance(i, Input):
        return i
    if isinstance(i, str):
        return Input(text=i)
    if isinstance(i, Mapping):
        return Input(text=str(i.get("text", "")), source=str(i.get("source", "")))
    if isinstance(i, (tuple, list)) and len(i) == 2:
        return Input(source=str(i[0]), text=str(i[1]))
    raise TypeError(f"an input is an Input, a str, a {{source, text}} mapping or a (source, text) pair, not {i!r}")


def _principal(p: PrincipalLike, roles: Optional[Sequence[str]], attributes: Optional[Mapping[str, Any]]):
    if p is None and not roles and not attributes:
        return None
    msg = decision_pb2.Principal()
    if isinstance(p, Mapping):
        msg.id = str(p.get("id", ""))
        msg.roles.extend(p.get("roles") or ())
        if p.get("attributes"):
            msg.attributes.CopyFrom(to_struct(p["attributes"]))
    elif p is not None:
        msg.id = str(p)
    if roles:
        msg.roles.extend(roles)
    if attributes:
        msg.attributes.CopyFrom(to_struct(attributes))
    return msg


def _resource(r: ResourceLike):
    if r is None:
        return None
    if isinstance(r, decision_pb2.Resource):
        return r
    msg = decision_pb2.Resource(kind=str(r.get("kind", "")), id=str(r.get("id", "")))
    if r.get("attributes"):
        msg.attributes.CopyFrom(to_struct(r["attributes"]))
    return msg


def build_request(
    *,
    agent: str,
    tool: str,
    args: Optional[Mapping[str, Any]] = None,
    principal: PrincipalLike = None,
    roles: Optional[Sequence[str]] = None,
    principal_attributes: Optional[Mapping[str, Any]] = None,
    session_id: Optional[str] = None,
    framework: str = "",
    agent_attributes: Optional[Mapping[str, Any]] = None,
    resource: ResourceLike = None,
    inputs: Optional[Iterable[InputLike]] = None,
    dry_run: bool = False,
    approval_id: Optional[str] = None,
) -> decision_pb2.AuthorizeRequest:
    ctx = _ctx.get()
    agent = agent or ctx.agent or ""
    if not agent:
        raise ValueError("agentpdp: an agent id is required (agent=..., the client's default, or call_context)")
    if not tool:
        raise ValueError("agentpdp: a tool name is required")
    req = decision_pb2.AuthorizeRequest(tool=tool, dry_run=dry_run, approval_id=approval_id or "")
    a = req.agent
    a.id = agent
    if framework:
        a.framework = framework
    sid = session_id if session_id is not None else ctx.session_id
    if sid:
        a.session_id = str(sid)
    if agent_attributes:
        a.attributes.CopyFrom(to_struct(agent_attributes))
    p = _principal(principal if principal is not None else ctx.principal, roles, principal_attributes)
    if p is not None:
        req.principal.CopyFrom(p)
    if args is not None:
        req.args.CopyFrom(to_struct(args))
    res = _resource(resource)
    if res is not None:
        req.resource.CopyFrom(res)
    all_inputs = list(ctx.inputs)
    if inputs:
        all_inputs.extend(to_input(i) for i in inputs)
    for i in all_inputs:
        req.inputs.add(source=i.source, text=i.text)
    return req


def _reasons(rs) -> tuple[Reason, ...]:
    return tuple(
        Reason(rule_id=r.rule_id, effect=_EFFECTS.get(r.effect, "UNSPECIFIED"), message=r.message,
               policy=r.policy, tags=dict(r.tags))
        for r in rs
    )


def parse_response(resp: decision_pb2.AuthorizeResponse) -> Decision:
    content = resp.content if resp.HasField("content") else None
    return Decision(
        decision=_DECISIONS.get(resp.decision, "UNSPECIFIED"),
        policy_decision=_DECISIONS.get(resp.policy_decision, "UNSPECIFIED"),
        mode=_MODES.get(resp.mode, "UNSPECIFIED"),
        reasons=_reasons(resp.reasons),
        decision_id=resp.decision_id,
        policy_version=resp.policy_version,
        policy=resp.policy,
        approval_id=resp.approval_id or None,
        approval_expires_at=resp.approval_expires_at.ToDatetime(_dt.timezone.utc)
        if resp.HasField("approval_expires_at") else None,
        warning=resp.warning,
        trace_id=resp.trace_id,
        dry_run=resp.dry_run,
        injection_score=content.injection_score if content is not None else 0.0,
        pii_kinds=tuple(content.pii_kinds) if content is not None else (),
        eval_time=resp.eval_time.ToTimedelta().total_seconds() if resp.HasField("eval_time") else 0.0,
        response=resp,
    )


def unavailable_decision(agent: str, cause: str, fail_open: bool) -> Decision:
    if fail_open:
        msg = (f"the PDP could not be reached ({cause}); allowed because the client is "
               f"fail-open for agent {agent}")
        return Decision(decision=ALLOW, reasons=(Reason(REASON_UNAVAILABLE, ALLOW, msg),), warning=msg)
    return Decision(
        decision=DENY, policy_decision=DENY,
        reasons=(Reason(REASON_UNAVAILABLE, DENY, f"the PDP could not be reached ({cause}); denied (fail closed)"),),
    )


def invalid_decision(message: str) -> Decision:
    return Decision(decision=DENY, policy_decision=DENY,
                    reasons=(Reason(REASON_INVALID_REQUEST, DENY, "invalid request: " + message),))


def parse_approval(a: approval_pb2.Approval, timed_out: bool = False) -> Approval:
    return Approval(
        id=a.id, status=_APPROVAL_STATUS.get(a.status, "UNSPECIFIED"), timed_out=timed_out,
        agent_id=a.agent_id, principal_id=a.principal_id, tool=a.tool, approver=a.approver,
        note=a.note, decision_id=a.decision_id, reasons=_reasons(a.reasons),
    )


def parse_scan(s: decision_pb2.ContentScan) -> ContentScan:
    return ContentScan(
        injection_score=s.injection_score, flagged=s.flagged, signals=tuple(s.signals),
        pii=tuple(PIIMatch(p.kind, p.start, p.end) for p in s.pii), truncated=s.truncated,
    )


def outcome_status(status: str) -> int:
    try:
        return _OUTCOMES[status]
    except KeyError:
        raise ValueError(f"status must be one of {sorted(_OUTCOMES)}, not {status!r}") from None


def summarize_error(e: BaseException, limit: int = 4096) -> str:
    s = f"{type(e).__name__}: {e}"
    return s[:limit]


def dumps(v: Any) -> str:
    return json.dumps(jsonable(v), sort_keys=True)
