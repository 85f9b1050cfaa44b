import datetime

from agentpdp.v1 import decision_pb2 as _decision_pb2
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

class ApprovalStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPROVAL_STATUS_UNSPECIFIED: _ClassVar[ApprovalStatus]
    APPROVAL_STATUS_PENDING: _ClassVar[ApprovalStatus]
    APPROVAL_STATUS_APPROVED: _ClassVar[ApprovalStatus]
    APPROVAL_STATUS_REJECTED: _ClassVar[ApprovalStatus]
    APPROVAL_STATUS_EXPIRED: _ClassVar[ApprovalStatus]
    APPROVAL_STATUS_USED: _ClassVar[ApprovalStatus]
APPROVAL_STATUS_UNSPECIFIED: ApprovalStatus
APPROVAL_STATUS_PENDING: ApprovalStatus
APPROVAL_STATUS_APPROVED: ApprovalStatus
APPROVAL_STATUS_REJECTED: ApprovalStatus
APPROVAL_STATUS_EXPIRED: ApprovalStatus
APPROVAL_STATUS_USED: ApprovalStatus

class Approval(_message.Message):
    __slots__ = ("id", "status", "agent_id", "principal_id", "tool", "args", "digest", "policy", "reasons", "decision_id", "created_at", "expires_at", "decided_at", "approver", "note")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    APPROVER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: ApprovalStatus
    agent_id: str
    principal_id: str
    tool: str
    args: _struct_pb2.Struct
    digest: str
    policy: str
    reasons: _containers.RepeatedCompositeFieldContainer[_decision_pb2.Reason]
    decision_id: str
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    decided_at: _timestamp_pb2.Timestamp
    approver: str
    note: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[ApprovalStatus, str]] = ..., agent_id: _Optional[str] = ..., principal_id: _Optional[str] = ..., tool: _Optional[str] = ..., args: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., digest: _Optional[str] = ..., policy: _Optional[str] = ..., reasons: _Optional[_Iterable[_Union[_decision_pb2.Reason, _Mapping]]] = ..., decision_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., approver: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ListPendingRequest(_message.Message):
    __slots__ = ("agent_id", "principal_id", "tool")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    principal_id: str
    tool: str
    def __init__(self, agent_id: _Optional[str] = ..., principal_id: _Optional[str] = ..., tool: _Optional[str] = ...) -> None: ...

class ListPendingResponse(_message.Message):
    __slots__ = ("approvals",)
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    approvals: _containers.RepeatedCompositeFieldContainer[Approval]
    def __init__(self, approvals: _Optional[_Iterable[_Union[Approval, _Mapping]]] = ...) -> None: ...

class GetApprovalRequest(_message.Message):
    __slots__ = ("approval_id",)
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    def __init__(self, approval_id: _Optional[str] = ...) -> None: ...

class DecideRequest(_message.Message):
    __slots__ = ("approval_id", "approve", "approver", "note")
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    APPROVER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    approve: bool
    approver: str
    note: str
    def __init__(self, approval_id: _Optional[str] = ..., approve: _Optional[bool] = ..., approver: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class WatchApprovalsRequest(_message.Message):
    __slots__ = ("agent_id", "include_pending")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PENDING_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    include_pending: bool
    def __init__(self, agent_id: _Optional[str] = ..., include_pending: _Optional[bool] = ...) -> None: ...

class ApprovalEvent(_message.Message):
    __slots__ = ("kind", "approval")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ApprovalEvent.Kind]
        KIND_CREATED: _ClassVar[ApprovalEvent.Kind]
        KIND_DECIDED: _ClassVar[ApprovalEvent.Kind]
        KIND_EXPIRED: _ClassVar[ApprovalEvent.Kind]
        KIND_USED: _ClassVar[ApprovalEvent.Kind]
    KIND_UNSPECIFIED: ApprovalEvent.Kind
    KIND_CREATED: ApprovalEvent.Kind
    KIND_DECIDED: ApprovalEvent.Kind
    KIND_EXPIRED: ApprovalEvent.Kind
    KIND_USED: ApprovalEvent.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    kind: ApprovalEvent.Kind
    approval: Approval
    def __init__(self, kind: _Optional[_Union[ApprovalEvent.Kind, str]] = ..., approval: _Optional[_Union[Approval, _Mapping]] = ...) -> None: ...

class WaitApprovalRequest(_message.Message):
    __slots__ = ("approval_id", "timeout")
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    timeout: _duration_pb2.Duration
    def __init__(self, approval_id: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WaitApprovalResponse(_message.Message):
    __slots__ = ("approval", "timed_out")
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    TIMED_OUT_FIELD_NUMBER: _ClassVar[int]
    approval: Approval
    timed_out: bool
    def __init__(self, approval: _Optional[_Union[Approval, _Mapping]] = ..., timed_out: _Optional[bool] = ...) -> None: ...
