"""One execution: runs its handler, enforces its deadline and cancellation, reports back."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import inspect
import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from . import _convert as convert
from ._context import _Cancellation, _current
from ._convert import Cause, Failure, Output
from ._errors import HandlerError
from ._gen import handler_pb2 as pb
from ._handler import _Registered
from ._tracing import handler_span

logger = logging.getLogger("tock")

SHUTTING_DOWN = Failure(
    message="the service is shutting down",
    kind="ShuttingDown",
    retryable=True,
    # Not CANCELLED: nobody asked for the execution to stop, and it deserves another attempt.
    cause=Cause.HANDLER,
)
"""The outcome of executions the worker refuses or stops because it is shutting down."""

HEARTBEAT_INTERVAL = 1.0
"""The shortest time, in seconds, between two heartbeats of one execution; calls in between
are dropped, so that handlers can heartbeat as often as they like."""

Send = Callable[[pb.ExecuteResponse, bool], None]
"""Queues a message on the execution's stream; the flag says whether it may be dropped."""


class Execution:
    """Runs one Start to its Result.

    The lifecycle, all on the worker's event loop:

        run ──▶ handler running ──▶ handler returns ──────────────▶ Result (its outcome)
                   │    ▲
         Cancel ───┘    └── async handler: CancelledError; sync handler: ctx.cancelled
                   │
                   ├──▶ handler ends ──────────────────────────────▶ Result (cancelled)
                   └──▶ deadline passes (or stream/worker gives up) ▶ Result at once

    Once an execution is cancelled its Result reports the cancellation, whatever the handler
    does next. A sync handler cannot be interrupted: when the deadline passes the Result is
    sent at once and the thread runs on until the handler returns, its outcome discarded.

    Progress, logs and heartbeats may come from handler threads; they are handed to the loop,
    and dropped once the Result is sent.
    """

    def __init__(
        self,
        start: pb.Start,
        handler: _Registered | None,
        *,
        send: Send,
        pool: concurrent.futures.Executor,
        known_handlers: Sequence[str],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._start = start
        self._handler = handler
        self._send = send
        self._pool = pool
        self._known_handlers = known_handlers
        self._cancellation = _Cancellation()
        self.context = convert.context_from_start(
            start,
            received=datetime.now(timezone.utc),
            reporter=self,
            cancellation=self._cancellation,
        )
        self.execution_id = start.execution_id
        # The fields below belong to the loop thread.
        self._cause: Cause | None = None
        self._shutting_down = False
        self._abandon: asyncio.Future[None] = self._loop.create_future()
        # Resolved by any cancellation: ends the wait for a start time.
        self._stop_waiting: asyncio.Future[None] = self._loop.create_future()
        self._future: asyncio.Future[Any] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._queued: concurrent.futures.Future[Any] | None = None
        self._reported = False
        # Heartbeats come from any thread.
        self._beat_lock = threading.Lock()
        self._last_beat: float | None = None

    # --- control, from the stream (loop thread) ---

    def cancel(self, cause: Cause, reason: str, *, abandon: bool = False) -> None:
        """Cancels the execution. With abandon, the Result goes out without waiting for the
        handler to end."""
        if self._cause is None:
            self._cause = cause
            self._cancellation.set(reason)
            if self._task is not None:
                self._task.cancel()
            if self._queued is not None:
                # Keeps a sync handler that still waits for a thread from ever starting.
                self._queued.cancel()
        if not self._stop_waiting.done():
            self._stop_waiting.set_result(None)
        if abandon and not self._abandon.done():
            self._abandon.set_result(None)

    def shut_down(self) -> None:
        """Cancels the execution because the worker is stopping, and reports it at once as a
        retryable failure: the execution deserves another attempt elsewhere."""
        if self._cause is None:
            self._shutting_down = True
        self.cancel(Cause.CANCELLED, SHUTTING_DOWN.message, abandon=True)

    async def run(self) -> None:
        try:
            outcome = await self._outcome()
        except asyncio.CancelledError:
            # The stream stopped waiting for this execution: nobody is left to report to.
            self._reported = True
            if self._task is not None:
                self._task.cancel()
            raise
        except Exception as e:  # A bug in the SDK: still tell the agent.
            logger.exception("execution %s failed inside the SDK", self.execution_id)
            outcome = Failure(
                message=f"the SDK failed to run the handler: {e!r}",
                kind="InternalError",
                retryable=True,
                cause=Cause.PANIC,
            )
        self._report(outcome)
        if self._task is not None:
            # The handler task was cancelled or is done; wait so that it ends before the
            # execution does. A sync handler's thread stays with the pool.
            await asyncio.wait((self._task,))

    # --- reporting, from the handler (any thread) ---

    def progress(self, fraction: float, message: str) -> None:
        self._emit(convert.progress_message(self.execution_id, fraction, message))

    def log(self, level: str, message: str) -> None:
        now = datetime.now(timezone.utc)
        self._emit(convert.log_message(self.execution_id, now, level, message))

    def heartbeat(self) -> None:
        now = time.monotonic()
        with self._beat_lock:
            if self._last_beat is not None and now - self._last_beat < HEARTBEAT_INTERVAL:
                return
            self._last_beat = now
        self._emit(convert.heartbeat_message(self.execution_id))

    def _emit(self, message: pb.ExecuteResponse) -> None:
        if threading.get_ident() == self._loop_thread:
            self._emit_now(message)
            return
        with contextlib.suppress(RuntimeError):  # A closed loop: the worker is gone.
            self._loop.call_soon_threadsafe(self._emit_now, message)

    def _emit_now(self, message: pb.ExecuteResponse) -> None:
        if not self._reported:
            self._send(message, True)

    # --- running ---

    async def _outcome(self) -> Output | Failure:
        handler = self._handler
        if handler is None:
            known = ", ".join(sorted(self._known_handlers))
            return Failure(
                message=f"no handler named {self._start.handler!r}; this service serves: {known}",
                kind="UnknownHandler",
                retryable=False,
                cause=Cause.UNKNOWN_HANDLER,
            )
        if self._start.HasField("start_time"):
            # Handed over ahead of its time: start the handler then, unless cancelled first.
            start_at = self._start.start_time.ToDatetime(tzinfo=timezone.utc)
            wait = (start_at - datetime.now(timezone.utc)).total_seconds()
            if wait > 0:
                await asyncio.wait((self._stop_waiting,), timeout=wait)
        deadline = self.context.deadline
        delay = None
        if deadline is not None:
            delay = (deadline - datetime.now(timezone.utc)).total_seconds()
            if delay <= 0:
                self.cancel(Cause.DEADLINE_EXCEEDED, "deadline exceeded")
        if self._cause is not None:
            return self._cancelled_failure()

        payload: Any = self._start.payload
        if handler.decode_json:
            try:
                payload = convert.decode_json(payload)
            except ValueError as e:
                return Failure(
                    message=f"payload is not valid JSON: {e}",
                    kind="InvalidPayload",
                    retryable=False,
                    cause=Cause.HANDLER,
                )

        try:
            future = self._call(handler, payload)
        except RuntimeError:  # The pool is shut down: the worker is stopping.
            return SHUTTING_DOWN
        timer = None
        if delay is not None:
            timer = self._loop.call_later(delay, self._on_deadline)
        try:
            await asyncio.wait((future, self._abandon), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if timer is not None:
                timer.cancel()
        if self._cause is not None:
            return self._cancelled_failure()
        return self._outcome_of(handler, future)

    def _call(self, handler: _Registered, payload: Any) -> asyncio.Future[Any]:
        ctx = self.context
        future: asyncio.Future[Any]
        if handler.is_async:

            async def call_async() -> Any:
                _current.set(ctx)
                with handler_span(ctx, self._span_outcome):
                    return await handler.fn(ctx, payload)

            self._task = self._loop.create_task(
                call_async(), name=f"tock handler {handler.name} {ctx.execution_id}"
            )
            future = self._task
        else:

            def call_sync() -> Any:
                _current.set(ctx)
                with handler_span(ctx, self._span_outcome):
                    return handler.fn(ctx, payload)

            self._queued = self._pool.submit(contextvars.copy_context().run, call_sync)
            future = asyncio.wrap_future(self._queued, loop=self._loop)
        future.add_done_callback(_retrieve)
        self._future = future
        return future

    def _span_outcome(self, exc: BaseException | None) -> str:
        """Names how the execution ends, for the handler's span. Runs where the handler runs;
        it only reads what the loop has decided."""
        if self._shutting_down:
            return "FAILED"
        if self._cause is Cause.DEADLINE_EXCEEDED:
            return "TIMED_OUT"
        if self._cause is not None:
            return "CANCELLED"
        return "FAILED" if exc is not None else "SUCCEEDED"

    def _on_deadline(self) -> None:
        self.cancel(Cause.DEADLINE_EXCEEDED, "deadline exceeded", abandon=True)

    def _cancelled_failure(self) -> Failure:
        if self._shutting_down:
            return SHUTTING_DOWN
        if self._cause is Cause.DEADLINE_EXCEEDED:
            return Failure(
                message="the handler did not finish before its deadline",
                kind="DeadlineExceeded",
                retryable=True,
                cause=Cause.DEADLINE_EXCEEDED,
            )
        return Failure(
            message=f"execution cancelled: {self._cancellation.reason}",
            kind="Cancelled",
            retryable=False,
            cause=Cause.CANCELLED,
        )

    def _outcome_of(self, handler: _Registered, future: asyncio.Future[Any]) -> Output | Failure:
        if future.cancelled():
            # Only a handler that raises CancelledError itself ends here.
            return Failure(
                message="the handler raised CancelledError",
                kind="CancelledError",
                retryable=True,
                cause=Cause.PANIC,
            )
        exc = future.exception()
        if exc is None:
            return self._encode(handler, future.result())
        if isinstance(exc, HandlerError):
            return Failure(
                message=exc.message,
                kind=exc.kind,
                retryable=exc.retryable,
                cause=Cause.HANDLER,
                retry_after=exc.retry_after,
            )
        logger.warning(
            "handler %r raised in execution %s", handler.name, self.execution_id, exc_info=exc
        )
        self._emit_now(
            convert.log_message(
                self.execution_id,
                datetime.now(timezone.utc),
                "ERROR",
                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            )
        )
        return Failure(
            message=str(exc) or type(exc).__name__,
            kind=type(exc).__name__,
            retryable=True,
            cause=Cause.PANIC,
        )

    def _encode(self, handler: _Registered, value: object) -> Output | Failure:
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()
            return Failure(
                message=f"handler {handler.name!r} returned an awaitable; declare it async def",
                kind="InvalidResult",
                retryable=False,
                cause=Cause.PANIC,
            )
        try:
            return convert.encode_output(value)
        except convert.EncodeError as e:
            return Failure(message=str(e), kind="InvalidResult", retryable=False, cause=Cause.PANIC)

    def _report(self, outcome: Output | Failure) -> None:
        if self._reported:
            return
        self._send(convert.result_message(self.execution_id, outcome), False)
        self._reported = True


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Marks a handler's exception as seen, for handlers whose outcome was not waited for."""
    if not future.cancelled():
        future.exception()
