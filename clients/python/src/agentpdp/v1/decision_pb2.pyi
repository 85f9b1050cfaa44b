import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_ALLOW: _ClassVar[Decision]
    DECISION_DENY: _ClassVar[Decision]
    DECISION_REQUIRE_APPROVAL: _ClassVar[Decision]

class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODE_UNSPECIFIED: _ClassVar[Mode]
    MODE_OBSERVE: _ClassVar[Mode]
    MODE_WARN: _ClassVar[Mode]
    MODE_ENFORCE: _ClassVar[Mode]

class Effect(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EFFECT_UNSPECIFIED: _ClassVar[Effect]
    EFFECT_ALLOW: _ClassVar[Effect]
    EFFECT_DENY: _ClassVar[Effect]
    EFFECT_REQUIRE_APPROVAL: _ClassVar[Effect]
DECISION_UNSPECIFIED: Decision
DECISION_ALLOW: Decision
DECISION_DENY: Decision
DECISION_REQUIRE_APPROVAL: Decision
MODE_UNSPECIFIED: Mode
MODE_OBSERVE: Mode
MODE_WARN: Mode
MODE_ENFORCE: Mode
EFFECT_UNSPECIFIED: Effect
EFFECT_ALLOW: Effect
EFFECT_DENY: Effect
EFFECT_REQUIRE_APPROVAL: Effect

class Agent(_message.Message):
    __slots__ = ("id", "framework", "session_id", "attributes")
    ID_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    framework: str
    session_id: str
    attributes: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., framework: _Optional[str] = ..., session_id: _Optional[str] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Principal(_message.Message):
    __slots__ = ("id", "roles", "attributes")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    attributes: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Resource(_message.Message):
    __slots__ = ("kind", "id", "attributes")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    kind: str
    id: str
    attributes: _struct_pb2.Struct
    def __init__(self, kind: _Optional[str] = ..., id: _Optional[str] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Input(_message.Message):
    __slots__ = ("source", "text")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    source: str
    text: str
    def __init__(self, source: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class AuthorizeRequest(_message.Message):
    __slots__ = ("agent", "principal", "tool", "args", "resource", "inputs", "approval_id", "dry_run")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    principal: Principal
    tool: str
    args: _struct_pb2.Struct
    resource: Resource
    inputs: _containers.RepeatedCompositeFieldContainer[Input]
    approval_id: str
    dry_run: bool
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ..., principal: _Optional[_Union[Principal, _Mapping]] = ..., tool: _Optional[str] = ..., args: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., resource: _Optional[_Union[Resource, _Mapping]] = ..., inputs: _Optional[_Iterable[_Union[Input, _Mapping]]] = ..., approval_id: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("policy", "rule_id", "effect", "message", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    POLICY_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    policy: str
    rule_id: str
    effect: Effect
    message: str
    tags: _containers.ScalarMap[str, str]
    def __init__(self, policy: _Optional[str] = ..., rule_id: _Optional[str] = ..., effect: _Optional[_Union[Effect, str]] = ..., message: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RateLimitState(_message.Message):
    __slots__ = ("policy", "id", "limit", "remaining", "reset_at", "exceeded", "cost")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    RESET_AT_FIELD_NUMBER: _ClassVar[int]
    EXCEEDED_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    policy: str
    id: str
    limit: int
    remaining: int
    reset_at: _timestamp_pb2.Timestamp
    exceeded: bool
    cost: int
    def __init__(self, policy: _Optional[str] = ..., id: _Optional[str] = ..., limit: _Optional[int] = ..., remaining: _Optional[int] = ..., reset_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., exceeded: _Optional[bool] = ..., cost: _Optional[int] = ...) -> None: ...

class PIIMatch(_message.Message):
    __slots__ = ("kind", "start", "end")
    KIND_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    kind: str
    start: int
    end: int
    def __init__(self, kind: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class ContentScan(_message.Message):
    __slots__ = ("injection_score", "flagged", "signals", "pii", "truncated")
    INJECTION_SCORE_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    PII_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    injection_score: float
    flagged: bool
    signals: _containers.RepeatedScalarFieldContainer[str]
    pii: _containers.RepeatedCompositeFieldContainer[PIIMatch]
    truncated: bool
    def __init__(self, injection_score: _Optional[float] = ..., flagged: _Optional[bool] = ..., signals: _Optional[_Iterable[str]] = ..., pii: _Optional[_Iterable[_Union[PIIMatch, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class InputFindings(_message.Message):
    __slots__ = ("index", "source", "scan")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SCAN_FIELD_NUMBER: _ClassVar[int]
    index: int
    source: str
    scan: ContentScan
    def __init__(self, index: _Optional[int] = ..., source: _Optional[str] = ..., scan: _Optional[_Union[ContentScan, _Mapping]] = ...) -> None: ...

class ContentFindings(_message.Message):
    __slots__ = ("injection_score", "signals", "pii_kinds", "inputs")
    INJECTION_SCORE_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    PII_KINDS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    injection_score: float
    signals: _containers.RepeatedScalarFieldContainer[str]
    pii_kinds: _containers.RepeatedScalarFieldContainer[str]
    inputs: _containers.RepeatedCompositeFieldContainer[InputFindings]
    def __init__(self, injection_score: _Optional[float] = ..., signals: _Optional[_Iterable[str]] = ..., pii_kinds: _Optional[_Iterable[str]] = ..., inputs: _Optional[_Iterable[_Union[InputFindings, _Mapping]]] = ...) -> None: ...

class AuthorizeResponse(_message.Message):
    __slots__ = ("decision", "policy_decision", "mode", "reasons", "decision_id", "policy_version", "approval_id", "approval_expires_at", "rate_limits", "content", "eval_time", "warning", "trace_id", "dry_run", "policy")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    POLICY_DECISION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    EVAL_TIME_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    policy_decision: Decision
    mode: Mode
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    decision_id: str
    policy_version: str
    approval_id: str
    approval_expires_at: _timestamp_pb2.Timestamp
    rate_limits: _containers.RepeatedCompositeFieldContainer[RateLimitState]
    content: ContentFindings
    eval_time: _duration_pb2.Duration
    warning: str
    trace_id: str
    dry_run: bool
    policy: str
    def __init__(self, decision: _Optional[_Union[Decision, str]] = ..., policy_decision: _Optional[_Union[Decision, str]] = ..., mode: _Optional[_Union[Mode, str]] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., decision_id: _Optional[str] = ..., policy_version: _Optional[str] = ..., approval_id: _Optional[str] = ..., approval_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rate_limits: _Optional[_Iterable[_Union[RateLimitState, _Mapping]]] = ..., content: _Optional[_Union[ContentFindings, _Mapping]] = ..., eval_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., warning: _Optional[str] = ..., trace_id: _Optional[str] = ..., dry_run: _Optional[bool] = ..., policy: _Optional[str] = ...) -> None: ...
