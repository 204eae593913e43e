"""Conversions between the SDK's Python values and the generated protobuf messages.

This is the only module besides the gRPC plumbing that touches generated types.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from ._context import ExecutionContext, Upstream, _Cancellation, _Reporter
from ._gen import handler_pb2 as pb

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"


class Cause(enum.Enum):
    """Who ended a failed execution."""

    HANDLER = pb.ERROR_CAUSE_UNSPECIFIED
    DEADLINE_EXCEEDED = pb.ERROR_CAUSE_DEADLINE_EXCEEDED
    CANCELLED = pb.ERROR_CAUSE_CANCELLED
    UNKNOWN_HANDLER = pb.ERROR_CAUSE_UNKNOWN_HANDLER
    PANIC = pb.ERROR_CAUSE_PANIC


@dataclass(frozen=True)
class Output:
    """A handler's encoded return value."""

    data: bytes
    content_type: str


@dataclass(frozen=True)
class Failure:
    """Why an execution failed."""

    message: str
    kind: str
    retryable: bool
    cause: Cause
    retry_after: timedelta | None = None


class EncodeError(Exception):
    """A handler returned a value that cannot be sent as output."""


def encode_output(value: object) -> Output:
    """Encodes a handler's return value.

    bytes go as they are, typed ``application/json`` when they parse as JSON and
    ``application/octet-stream`` otherwise; str goes as UTF-8 text; None is an empty output;
    anything else is encoded as JSON, dataclasses as dicts.
    """
    if value is None:
        return Output(b"", "")
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return Output(data, JSON if _is_json(data) else OCTET_STREAM)
    if isinstance(value, str):
        return Output(value.encode(), TEXT)
    try:
        text = json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise EncodeError(f"cannot encode the returned {type(value).__name__} as JSON: {e}") from e
    return Output(text.encode(), JSON)


def _json_default(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _is_json(data: bytes) -> bool:
    if not data or data.lstrip()[:1] not in b'{["-0123456789tfn':
        return False
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def decode_json(payload: bytes) -> Any:
    """Decodes a JSON payload; an empty payload is None. Raises ValueError when invalid."""
    if not payload:
        return None
    return json.loads(payload)


def to_datetime(ts: Timestamp) -> datetime:
    return datetime.fromtimestamp(ts.seconds, tz=timezone.utc) + timedelta(
        microseconds=ts.nanos // 1000
    )


def to_duration(td: timedelta) -> Duration:
    d = Duration()
    d.FromTimedelta(td)
    return d


def context_from_start(
    start: pb.Start,
    *,
    received: datetime,
    reporter: _Reporter,
    cancellation: _Cancellation,
) -> ExecutionContext:
    """Builds the handler's context from the agent's Start message."""
    return ExecutionContext(
        execution_id=start.execution_id,
        job=start.job,
        handler=start.handler,
        attempt=start.attempt,
        nominal_time=(
            to_datetime(start.nominal_time) if start.HasField("nominal_time") else received
        ),
        lease_epoch=start.lease_epoch,
        shard_index=start.shard_index,
        shard_total=start.shard_total,
        deadline=to_datetime(start.deadline) if start.HasField("deadline") else None,
        content_type=start.content_type,
        trace_context=dict(start.trace_context),
        upstream=tuple(
            Upstream(
                job=u.job,
                execution_id=u.execution_id,
                output=u.output,
                content_type=u.content_type,
            )
            for u in start.upstream
        ),
        _reporter=reporter,
        _cancellation=cancellation,
    )


def progress_message(execution_id: str, fraction: float, message: str) -> pb.ExecuteResponse:
    return pb.ExecuteResponse(
        progress=pb.Progress(execution_id=execution_id, fraction=fraction, message=message)
    )


def log_message(execution_id: str, time: datetime, level: str, message: str) -> pb.ExecuteResponse:
    ts = Timestamp()
    ts.FromDatetime(time)
    return pb.ExecuteResponse(
        log=pb.Log(execution_id=execution_id, time=ts, level=level, message=message)
    )


def heartbeat_message(execution_id: str) -> pb.ExecuteResponse:
    return pb.ExecuteResponse(heartbeat=pb.Heartbeat(execution_id=execution_id))


def result_message(execution_id: str, outcome: Output | Failure) -> pb.ExecuteResponse:
    if isinstance(outcome, Output):
        result = pb.Result(
            execution_id=execution_id,
            output=pb.Output(data=outcome.data, content_type=outcome.content_type),
        )
    else:
        error = pb.Error(
            message=outcome.message,
            kind=outcome.kind,
            retryable=outcome.retryable,
            cause=outcome.cause.value,
        )
        if outcome.retry_after is not None:
            error.retry_after.CopyFrom(to_duration(outcome.retry_after))
        result = pb.Result(execution_id=execution_id, error=error)
    return pb.ExecuteResponse(result=result)


def list_handlers_response(names: list[str], sdk: str) -> pb.ListHandlersResponse:
    return pb.ListHandlersResponse(
        handlers=[pb.HandlerInfo(name=name) for name in names],
        sdk=sdk,
    )
