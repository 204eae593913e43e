"""One Execute stream: the agent's Starts and Cancels in, every execution's reports out."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import Executor
from typing import Any

import grpc

from . import _convert as convert
from ._convert import Cause
from ._execution import SHUTTING_DOWN, Execution
from ._gen import handler_pb2 as pb
from ._handler import _Registered

logger = logging.getLogger("tock")

_OUTBOX_LIMIT = 10_000
"""Progress, log and heartbeat messages queued beyond this are dropped; results never are."""


class _Outbox:
    """The messages waiting for the stream's writer. Loop thread only."""

    def __init__(self, limit: int = _OUTBOX_LIMIT) -> None:
        self._queue: asyncio.Queue[pb.ExecuteResponse | None] = asyncio.Queue()
        self._limit = limit
        self._closed = False
        self.dropped = 0

    def send(self, message: pb.ExecuteResponse, droppable: bool) -> None:
        if self._closed:
            return
        if droppable and self._queue.qsize() >= self._limit:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning(
                    "the agent reads slower than handlers report: dropped %d progress, log "
                    "and heartbeat messages so far",
                    self.dropped,
                )
            return
        self._queue.put_nowait(message)

    def close(self) -> None:
        """Ends the writer once what is queued is written; later messages are dropped."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    async def get(self) -> pb.ExecuteResponse | None:
        return await self._queue.get()


class ExecuteStream:
    """Serves one Execute call.

    A reader task takes the agent's requests and starts or cancels executions, each its own
    task; a single writer task writes everything the executions report, so writes never
    interleave. The stream ends:

    - when the agent half-closes and every execution has reported: normally, once the
      writer has flushed;
    - when the worker ends it (after draining it): the same way;
    - when the agent cancels the call, the connection breaks, or a write fails: every
      running execution is cancelled and the stream waits, up to cleanup_timeout, for
      them to end.
    """

    def __init__(
        self,
        registry: Mapping[str, _Registered],
        *,
        pool: Executor,
        cleanup_timeout: float,
        draining: bool,
    ) -> None:
        self._registry = registry
        self._pool = pool
        self._cleanup_timeout = cleanup_timeout
        self._draining = draining
        self._outbox = _Outbox()
        self._executions: dict[str, Execution] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._half_closed = False
        self._ending = False
        self._finished = asyncio.Event()

    # --- control, from the worker ---

    def drain(self) -> None:
        """Refuses new Starts from now on; running executions carry on."""
        self._draining = True

    async def wait_idle(self) -> None:
        """Returns once no execution is running."""
        await self._idle.wait()

    def shut_down(self) -> None:
        """Cancels every running execution and reports it at once, as retryable."""
        for execution in list(self._executions.values()):
            execution.shut_down()

    def end(self) -> None:
        """Ends the stream once every running execution has reported."""
        self._ending = True
        self._check_finished()

    # --- serving ---

    async def serve(
        self,
        requests: AsyncIterator[pb.ExecuteRequest],
        context: grpc.aio.ServicerContext[pb.ExecuteRequest, pb.ExecuteResponse],
    ) -> None:
        writer = asyncio.create_task(self._write(context), name="tock stream writer")
        reader = asyncio.create_task(self._read(requests), name="tock stream reader")
        finished = asyncio.create_task(self._finished.wait(), name="tock stream finished")
        waiting = {reader, writer, finished}
        try:
            while True:
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if finished in done:
                    self._outbox.close()
                    await writer
                    return
                if writer in done:
                    return  # The stream broke.
                if reader.cancelled() or reader.exception() is not None:
                    return
                # The agent half-closed; carry on until every execution has reported.
                waiting.discard(reader)
        finally:
            await self._close(reader, writer, finished)

    async def _read(self, requests: AsyncIterator[pb.ExecuteRequest]) -> None:
        async for request in requests:
            kind = request.WhichOneof("kind")
            if kind == "start":
                self._start(request.start)
            elif kind == "cancel":
                self._cancel(request.cancel)
            # Other kinds come from a newer agent; this SDK has nothing to do with them.
        self._half_closed = True
        self._check_finished()

    async def _write(
        self, context: grpc.aio.ServicerContext[pb.ExecuteRequest, pb.ExecuteResponse]
    ) -> None:
        while True:
            message = await self._outbox.get()
            if message is None:
                return
            await context.write(message)

    def _start(self, start: pb.Start) -> None:
        execution_id = start.execution_id
        if not execution_id:
            logger.warning("ignoring a Start without an execution id (handler %r)", start.handler)
            return
        if execution_id in self._executions:
            logger.warning("ignoring a second Start for running execution %s", execution_id)
            return
        if self._draining:
            self._outbox.send(convert.result_message(execution_id, SHUTTING_DOWN), False)
            return
        execution = Execution(
            start,
            self._registry.get(start.handler),
            send=self._outbox.send,
            pool=self._pool,
            known_handlers=list(self._registry),
        )
        task = asyncio.get_running_loop().create_task(
            execution.run(), name=f"tock execution {execution_id}"
        )
        self._executions[execution_id] = execution
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(functools.partial(self._on_done, execution_id))

    def _cancel(self, cancel: pb.Cancel) -> None:
        execution = self._executions.get(cancel.execution_id)
        if execution is None:
            return  # Finished already, or never started here.
        execution.cancel(Cause.CANCELLED, cancel.reason or "cancelled by the agent")

    def _on_done(self, execution_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._executions.pop(execution_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("execution %s failed inside the SDK", execution_id, exc_info=exc)
        if not self._executions:
            self._idle.set()
        self._check_finished()

    def _check_finished(self) -> None:
        if (self._half_closed or self._ending) and not self._executions:
            self._finished.set()

    async def _close(self, *tasks: asyncio.Task[Any]) -> None:
        self._outbox.close()
        for execution in list(self._executions.values()):
            execution.cancel(Cause.CANCELLED, "the stream closed", abandon=True)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self._cleanup_timeout)
            if pending:
                logger.warning(
                    "%d executions ignored cancellation for %.1fs after their stream closed",
                    len(pending),
                    self._cleanup_timeout,
                )
                for task in pending:
                    task.cancel()
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, grpc.aio.AbortError):
                logger.debug("execute stream ended: %r", result)
