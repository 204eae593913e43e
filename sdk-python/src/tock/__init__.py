"""Tock SDK: serve job handlers to the Tock agent running next to this service.

A handler is a function decorated with ``@tock.handler``; a ``Worker`` serves the handlers
it is given::

    import asyncio
    import tock

    @tock.handler
    async def echo(ctx: tock.ExecutionContext, payload: bytes) -> bytes:
        ctx.log(f"echoing {len(payload)} bytes")
        return payload

    async def main() -> None:
        async with tock.Worker(handlers=[echo], listen="127.0.0.1:7403"):
            await asyncio.Event().wait()

    asyncio.run(main())
"""

from ._context import ExecutionContext, Upstream, current_execution
from ._errors import HandlerError, NonRetryableError
from ._handler import handler
from ._version import __version__
from ._worker import Worker

__all__ = [
    "ExecutionContext",
    "HandlerError",
    "NonRetryableError",
    "Upstream",
    "Worker",
    "__version__",
    "current_execution",
    "handler",
]
