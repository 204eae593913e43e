import datetime
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorCause(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CAUSE_UNSPECIFIED: _ClassVar[ErrorCause]
    ERROR_CAUSE_DEADLINE_EXCEEDED: _ClassVar[ErrorCause]
    ERROR_CAUSE_CANCELLED: _ClassVar[ErrorCause]
    ERROR_CAUSE_UNKNOWN_HANDLER: _ClassVar[ErrorCause]
    ERROR_CAUSE_PANIC: _ClassVar[ErrorCause]
ERROR_CAUSE_UNSPECIFIED: ErrorCause
ERROR_CAUSE_DEADLINE_EXCEEDED: ErrorCause
ERROR_CAUSE_CANCELLED: ErrorCause
ERROR_CAUSE_UNKNOWN_HANDLER: ErrorCause
ERROR_CAUSE_PANIC: ErrorCause

class ListHandlersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListHandlersResponse(_message.Message):
    __slots__ = ("handlers", "sdk")
    HANDLERS_FIELD_NUMBER: _ClassVar[int]
    SDK_FIELD_NUMBER: _ClassVar[int]
    handlers: _containers.RepeatedCompositeFieldContainer[HandlerInfo]
    sdk: str
    def __init__(self, handlers: _Optional[_Iterable[_Union[HandlerInfo, _Mapping]]] = ..., sdk: _Optional[str] = ...) -> None: ...

class HandlerInfo(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("start", "cancel")
    START_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    start: Start
    cancel: Cancel
    def __init__(self, start: _Optional[_Union[Start, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ...) -> None: ...

class Start(_message.Message):
    __slots__ = ("execution_id", "handler", "job", "attempt", "nominal_time", "lease_epoch", "deadline", "payload", "content_type", "shard_index", "shard_total", "trace_context", "upstream", "start_time")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    NOMINAL_TIME_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    SHARD_TOTAL_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    handler: str
    job: str
    attempt: int
    nominal_time: _timestamp_pb2.Timestamp
    lease_epoch: int
    deadline: _timestamp_pb2.Timestamp
    payload: bytes
    content_type: str
    shard_index: int
    shard_total: int
    trace_context: _containers.ScalarMap[str, str]
    upstream: _containers.RepeatedCompositeFieldContainer[Upstream]
    start_time: _timestamp_pb2.Timestamp
    def __init__(self, execution_id: _Optional[str] = ..., handler: _Optional[str] = ..., job: _Optional[str] = ..., attempt: _Optional[int] = ..., nominal_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lease_epoch: _Optional[int] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payload: _Optional[bytes] = ..., content_type: _Optional[str] = ..., shard_index: _Optional[int] = ..., shard_total: _Optional[int] = ..., trace_context: _Optional[_Mapping[str, str]] = ..., upstream: _Optional[_Iterable[_Union[Upstream, _Mapping]]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Upstream(_message.Message):
    __slots__ = ("job", "execution_id", "output", "content_type")
    JOB_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    job: str
    execution_id: str
    output: bytes
    content_type: str
    def __init__(self, job: _Optional[str] = ..., execution_id: _Optional[str] = ..., output: _Optional[bytes] = ..., content_type: _Optional[str] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ("execution_id", "reason")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    reason: str
    def __init__(self, execution_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("progress", "log", "heartbeat", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    log: Log
    heartbeat: Heartbeat
    result: Result
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., log: _Optional[_Union[Log, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., result: _Optional[_Union[Result, _Mapping]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("execution_id", "fraction", "message")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    fraction: float
    message: str
    def __init__(self, execution_id: _Optional[str] = ..., fraction: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class Log(_message.Message):
    __slots__ = ("execution_id", "time", "level", "message")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    time: _timestamp_pb2.Timestamp
    level: str
    message: str
    def __init__(self, execution_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., level: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("execution_id",)
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    def __init__(self, execution_id: _Optional[str] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("execution_id", "output", "error")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    output: Output
    error: Error
    def __init__(self, execution_id: _Optional[str] = ..., output: _Optional[_Union[Output, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class Output(_message.Message):
    __slots__ = ("data", "content_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("message", "kind", "retryable", "retry_after", "cause")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    message: str
    kind: str
    retryable: bool
    retry_after: _duration_pb2.Duration
    cause: ErrorCause
    def __init__(self, message: _Optional[str] = ..., kind: _Optional[str] = ..., retryable: bool = ..., retry_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., cause: _Optional[_Union[ErrorCause, str]] = ...) -> None: ...
