from agentpdp.v1 import decision_pb2 as _decision_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamDecisionsRequest(_message.Message):
    __slots__ = ("agent_ids", "decisions", "include_other")
    AGENT_IDS_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_OTHER_FIELD_NUMBER: _ClassVar[int]
    agent_ids: _containers.RepeatedScalarFieldContainer[str]
    decisions: _containers.RepeatedScalarFieldContainer[_decision_pb2.Decision]
    include_other: bool
    def __init__(self, agent_ids: _Optional[_Iterable[str]] = ..., decisions: _Optional[_Iterable[_Union[_decision_pb2.Decision, str]]] = ..., include_other: _Optional[bool] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("chain_id", "seq", "type", "decision_id", "agent_id", "decision", "record")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    seq: int
    type: str
    decision_id: str
    agent_id: str
    decision: _decision_pb2.Decision
    record: bytes
    def __init__(self, chain_id: _Optional[str] = ..., seq: _Optional[int] = ..., type: _Optional[str] = ..., decision_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., decision: _Optional[_Union[_decision_pb2.Decision, str]] = ..., record: _Optional[bytes] = ...) -> None: ...
