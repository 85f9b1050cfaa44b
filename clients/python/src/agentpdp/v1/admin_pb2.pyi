import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Suspension(_message.Message):
    __slots__ = ("agent_id", "principal_id", "reason", "by", "created_at", "expires_at")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    principal_id: str
    reason: str
    by: str
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, agent_id: _Optional[str] = ..., principal_id: _Optional[str] = ..., reason: _Optional[str] = ..., by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SuspendAgentRequest(_message.Message):
    __slots__ = ("agent_id", "principal_id", "reason", "by", "ttl")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    principal_id: str
    reason: str
    by: str
    ttl: _duration_pb2.Duration
    def __init__(self, agent_id: _Optional[str] = ..., principal_id: _Optional[str] = ..., reason: _Optional[str] = ..., by: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ResumeAgentRequest(_message.Message):
    __slots__ = ("agent_id", "principal_id", "by")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    principal_id: str
    by: str
    def __init__(self, agent_id: _Optional[str] = ..., principal_id: _Optional[str] = ..., by: _Optional[str] = ...) -> None: ...

class ResumeAgentResponse(_message.Message):
    __slots__ = ("was_suspended",)
    WAS_SUSPENDED_FIELD_NUMBER: _ClassVar[int]
    was_suspended: bool
    def __init__(self, was_suspended: _Optional[bool] = ...) -> None: ...

class ListSuspensionsRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class ListSuspensionsResponse(_message.Message):
    __slots__ = ("suspensions",)
    SUSPENSIONS_FIELD_NUMBER: _ClassVar[int]
    suspensions: _containers.RepeatedCompositeFieldContainer[Suspension]
    def __init__(self, suspensions: _Optional[_Iterable[_Union[Suspension, _Mapping]]] = ...) -> None: ...
