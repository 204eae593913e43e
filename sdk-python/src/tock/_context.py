"""What a handler knows about the execution it runs, and how it talks back."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

__all__ = ["ExecutionContext", "current_execution"]


class _Reporter(Protocol):
    """Carries a handler's progress, logs and heartbeats to the agent. Safe from any thread."""

    def progress(self, fraction: float, message: str) -> None: ...

    def log(self, level: str, message: str) -> None: ...

    def heartbeat(self) -> None: ...


class _NullReporter:
    """Drops everything: the reporter of a context made outside a worker, as in unit tests."""

    def progress(self, fraction: float, message: str) -> None:
        pass

    def log(self, level: str, message: str) -> None:
        pass

    def heartbeat(self) -> None:
        pass


class _Cancellation:
    """Whether an execution is cancelled, readable from any thread.

    Only the worker's event loop sets it; handler threads read the flag or wait on it.
    """

    def __init__(self) -> None:
        self._flag = threading.Event()
        # Bound to the loop of its first waiter; set only from that loop.
        self._event = asyncio.Event()
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if self._flag.is_set():
            return
        self.reason = reason
        self._flag.set()
        self._event.set()

    def is_set(self) -> bool:
        return self._flag.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    def wait_sync(self, timeout: float | None) -> bool:
        return self._flag.wait(timeout)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Upstream:
    """The result of a job an execution depends on."""

    job: str
    """The upstream job's name."""
    execution_id: str
    """The upstream execution's id."""
    output: bytes
    """What its handler returned."""
    content_type: str
    """The media type of ``output``."""


@dataclass(frozen=True, kw_only=True, eq=False)
class ExecutionContext:
    """The execution a handler runs: who asked for it, when, and how to report back.

    The worker makes one per execution and passes it to the handler; inside the handler,
    ``tock.current_execution()`` returns it too. Its methods work from ``async def`` handlers
    and from sync handlers, which run on the worker's thread pool.

    Every field has a default so that tests can build a context and call a handler directly;
    such a context reports nowhere and is never cancelled.
    """

    execution_id: str = ""
    """The execution's id (a UUIDv7): the same on every attempt's reports, unique per execution."""
    job: str = ""
    """The name of the job the execution belongs to."""
    handler: str = ""
    """The name of the handler being run."""
    attempt: int = 1
    """The attempt number, starting at 1."""
    nominal_time: datetime = field(default_factory=_now)
    """When the execution was meant to run (UTC): the schedule's fire time, or the time of a
    manual trigger. Use it rather than the clock to decide which period a run covers."""
    lease_epoch: int = 0
    """Grows every time the execution is assigned; fence side effects with it so that a
    stale attempt cannot overwrite a newer one."""
    shard_index: int = 0
    """The shard this execution handles when the job is sharded, from 0."""
    shard_total: int = 0
    """The number of shards; 0 or 1 means the job is not sharded."""
    deadline: datetime | None = None
    """When the worker cancels the handler (UTC), or None for no deadline."""
    content_type: str = ""
    """The media type of the payload, such as ``"application/json"``."""
    trace_context: dict[str, str] = field(default_factory=dict)
    """W3C trace context (``traceparent``, ``tracestate``) of the execution's trace."""
    upstream: tuple[Upstream, ...] = ()
    """For an execution started because the jobs it depends on succeeded: their results."""

    _reporter: _Reporter = field(default_factory=_NullReporter, repr=False)
    _cancellation: _Cancellation = field(default_factory=_Cancellation, repr=False)

    def progress(self, fraction: float, message: str = "") -> None:
        """Reports how far the execution has come.

        Args:
            fraction: The fraction done, from 0 to 1.
            message: A short status such as ``"copied 40 of 100 files"``.

        Raises:
            ValueError: If fraction is not between 0 and 1.
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress fraction must be between 0 and 1, got {fraction}")
        self._reporter.progress(float(fraction), message)

    def log(self, message: str, level: str = "INFO") -> None:
        """Sends a log line to the agent, which records it with the execution.

        Args:
            message: The text of the line.
            level: The severity, such as ``"DEBUG"``, ``"INFO"``, ``"WARNING"`` or ``"ERROR"``.
        """
        self._reporter.log(level.upper(), message)

    def heartbeat(self) -> None:
        """Tells the agent that the handler is alive.

        Call it from long handlers, between steps. At most one heartbeat a second is sent for
        an execution; calls in between are dropped, so it is cheap to call often. The
        execution's lease does not depend on it: the agent keeps the lease of every execution
        it runs alive for as long as the execution runs.
        """
        self._reporter.heartbeat()

    @property
    def cancelled(self) -> bool:
        """Whether the execution is cancelled: by the agent, by its deadline, because the
        stream that carried it closed, or because the worker is shutting down.

        ``async def`` handlers are also interrupted with ``asyncio.CancelledError``. Sync
        handlers cannot be interrupted: they should check this flag (or wait with
        ``wait_for_cancelled_sync``) and return early.
        """
        return self._cancellation.is_set()

    @property
    def cancel_reason(self) -> str | None:
        """Why the execution was cancelled, or None while it is not."""
        return self._cancellation.reason

    async def wait_for_cancelled(self) -> None:
        """Returns once the execution is cancelled. For ``async def`` handlers."""
        await self._cancellation.wait()

    def wait_for_cancelled_sync(self, timeout: float | None = None) -> bool:
        """Blocks until the execution is cancelled or timeout seconds pass. For sync handlers;
        never call it from an ``async def`` handler, it would block the event loop.

        Returns:
            True if the execution is cancelled.
        """
        return self._cancellation.wait_sync(timeout)


_current: contextvars.ContextVar[ExecutionContext] = contextvars.ContextVar("tock_execution")


def current_execution() -> ExecutionContext:
    """Returns the context of the execution running in the calling task or thread.

    Raises:
        RuntimeError: If called outside a handler.
    """
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("tock.current_execution() called outside a handler") from None
