"""A minimal agent for the tests: drives a Worker exactly as the Tock agent does.

It opens one Execute stream per test, writes Starts and Cancels, and reads everything the
worker reports, filing it by execution id.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

import tock
from tock._gen import handler_pb2 as pb
from tock._gen import handler_pb2_grpc as pb_grpc

TIMEOUT = 5.0
"""How long any single wait in the tests may take before the test fails."""

_ids = itertools.count(1)

Metadata = Sequence[tuple[str, str]]

Serve = Callable[..., Awaitable[tuple["tock.Worker", "Agent"]]]
"""The serve fixture: starts a worker for the given handlers and connects an agent to it."""


def timestamp(t: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(t)
    return ts


class Agent:
    """A client of one worker."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Metadata | None = None) -> None:
        self.stub = pb_grpc.HandlerServiceStub(channel)
        self.metadata = metadata

    async def list_handlers(self) -> pb.ListHandlersResponse:
        response: pb.ListHandlersResponse = await self.stub.ListHandlers(
            pb.ListHandlersRequest(), metadata=self.metadata, timeout=TIMEOUT
        )
        return response

    def open(self) -> Stream:
        return Stream(self.stub.Execute(metadata=self.metadata))


class Stream:
    """One Execute stream and what has been read from it so far."""

    def __init__(self, call: grpc.aio.StreamStreamCall[pb.ExecuteRequest, pb.ExecuteResponse]):
        self.call = call
        self.messages: dict[str, list[pb.ExecuteResponse]] = defaultdict(list)
        self.results: dict[str, pb.Result] = {}
        self.ended = False

    async def start(
        self,
        handler: str,
        payload: bytes = b"",
        *,
        execution_id: str | None = None,
        deadline: timedelta | None = None,
        **fields: object,
    ) -> str:
        execution_id = execution_id or f"exec-{next(_ids)}"
        start = pb.Start(execution_id=execution_id, handler=handler, payload=payload, **fields)  # type: ignore[arg-type]
        if deadline is not None:
            start.deadline.CopyFrom(timestamp(datetime.now(timezone.utc) + deadline))
        await self.call.write(pb.ExecuteRequest(start=start))
        return execution_id

    async def cancel(self, execution_id: str, reason: str = "") -> None:
        cancel = pb.Cancel(execution_id=execution_id, reason=reason)
        await self.call.write(pb.ExecuteRequest(cancel=cancel))

    async def read(self) -> pb.ExecuteResponse | None:
        """Reads one message and files it; None once the worker ended the stream."""
        message = await asyncio.wait_for(self.call.read(), TIMEOUT)
        if message is grpc.aio.EOF:
            self.ended = True
            return None
        assert isinstance(message, pb.ExecuteResponse)
        kind = message.WhichOneof("kind")
        assert kind is not None
        execution_id = getattr(message, kind).execution_id
        self.messages[execution_id].append(message)
        if kind == "result":
            assert execution_id not in self.results, f"second result for {execution_id}"
            self.results[execution_id] = message.result
        return message

    async def read_until(self, done: Callable[[], bool]) -> None:
        while not done():
            if await self.read() is None:
                raise AssertionError("the worker ended the stream early")

    async def result(self, execution_id: str) -> pb.Result:
        await self.read_until(lambda: execution_id in self.results)
        return self.results[execution_id]

    async def wait_for(self, execution_id: str, kind: str) -> pb.ExecuteResponse:
        def seen() -> bool:
            return any(m.WhichOneof("kind") == kind for m in self.messages[execution_id])

        await self.read_until(seen)
        return next(m for m in self.messages[execution_id] if m.WhichOneof("kind") == kind)

    async def read_to_end(self) -> None:
        while await self.read() is not None:
            pass

    def kinds(self, execution_id: str) -> list[str]:
        return [str(m.WhichOneof("kind")) for m in self.messages[execution_id]]
