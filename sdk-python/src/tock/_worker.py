"""The Worker: serves tock.handler.v1.HandlerService for a set of handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

import grpc

from . import _convert as convert
from ._auth import TokenInterceptor
from ._gen import handler_pb2 as pb
from ._gen import handler_pb2_grpc as pb_grpc
from ._handler import _register
from ._stream import ExecuteStream
from ._version import __version__

__all__ = ["Worker"]

logger = logging.getLogger("tock")

SDK = f"tock-python/{__version__}"

_SERVER_OPTIONS = [
    # Without SO_REUSEPORT a second service on the same port fails to start instead of
    # silently sharing it.
    ("grpc.so_reuseport", 0),
    # The agent keeps its connection alive with pings (every 10s) that gRPC's default policy
    # answers with GOAWAY when they come more often than every 5 minutes.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
]


class Worker:
    """Serves handlers to the Tock agent next to this service.

    The agent connects, lists the handlers and runs executions over one long-lived stream.
    Use the worker as an async context manager, or ``await worker.run()`` until cancelled::

        async with tock.Worker(handlers=[echo], listen="127.0.0.1:7403") as worker:
            await stop.wait()

    Shutdown is graceful: new executions are refused, running ones get shutdown_timeout
    seconds to finish and are then cancelled, and the streams end once every result is
    written. Refused and cancelled executions are reported as retryable failures of kind
    ``"ShuttingDown"``, so that they run again elsewhere.

    Args:
        handlers: The functions to serve, each decorated with ``@tock.handler``.
        listen: Where to listen: ``"host:port"`` (port 0 picks a free one) or
            ``"unix:///path/to.sock"``. Defaults to ``"127.0.0.1:7403"``.
        token: When set, every call must carry ``authorization: Bearer <token>`` metadata or
            fail with UNAUTHENTICATED. Defaults to None: no check.
        max_sync_workers: The size of the thread pool that runs sync (``def``) handlers; more
            concurrent sync executions wait for a thread. ``async def`` handlers run on the
            event loop and are not limited here. Defaults to 16.
        shutdown_timeout: Seconds that running executions get to finish at shutdown before
            they are cancelled. Defaults to 10.
    """

    def __init__(
        self,
        handlers: Sequence[Callable[..., Any]],
        *,
        listen: str = "127.0.0.1:7403",
        token: str | None = None,
        max_sync_workers: int = 16,
        shutdown_timeout: float = 10.0,
    ) -> None:
        self._registry = _register(handlers)
        if not self._registry:
            raise ValueError("a worker needs at least one handler")
        if max_sync_workers < 1:
            raise ValueError(f"max_sync_workers must be at least 1, got {max_sync_workers}")
        if shutdown_timeout < 0:
            raise ValueError(f"shutdown_timeout must not be negative, got {shutdown_timeout}")
        if token is not None and not token:
            raise ValueError("token must not be empty; pass None for no token")
        self._listen = listen
        self._token = token
        self._max_sync_workers = max_sync_workers
        self._shutdown_timeout = shutdown_timeout
        self._server: grpc.aio.Server | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._address = ""
        self._streams: set[ExecuteStream] = set()
        self._draining = False
        self._shutdown_task: asyncio.Task[None] | None = None
        self._stopped: asyncio.Future[None] | None = None

    @property
    def handlers(self) -> list[str]:
        """The names of the handlers served, in registration order."""
        return list(self._registry)

    @property
    def address(self) -> str:
        """The address the worker listens on, with the port it bound, once started."""
        if not self._address:
            raise RuntimeError("the worker is not started")
        return self._address

    async def start(self) -> None:
        """Binds the address and starts serving; returns at once."""
        if self._server is not None:
            raise RuntimeError("the worker was already started")
        self._pool = ThreadPoolExecutor(
            max_workers=self._max_sync_workers, thread_name_prefix="tock-handler"
        )
        interceptors = [TokenInterceptor(self._token)] if self._token is not None else []
        server = grpc.aio.server(interceptors=interceptors, options=_SERVER_OPTIONS)
        pb_grpc.add_HandlerServiceServicer_to_server(_Servicer(self), server)
        try:
            port = server.add_insecure_port(self._listen)
        except RuntimeError as e:
            self._pool.shutdown(wait=False)
            raise OSError(f"cannot listen on {self._listen}: {e}") from e
        await server.start()
        self._server = server
        self._stopped = asyncio.get_running_loop().create_future()
        self._address = _bound_address(self._listen, port)
        logger.info("tock worker serving %s on %s", ", ".join(self._registry), self._address)

    async def run(self) -> None:
        """Serves until cancelled, then shuts down gracefully; starts the worker if needed.

        Also returns when ``shutdown()`` is called elsewhere.
        """
        if self._server is None:
            await self.start()
        assert self._stopped is not None
        try:
            await asyncio.shield(self._stopped)
        except asyncio.CancelledError:
            await self.shutdown()
            raise

    async def shutdown(self) -> None:
        """Stops gracefully. Safe to call more than once and from several tasks."""
        if self._server is None:
            return
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.get_running_loop().create_task(
                self._shutdown(), name="tock worker shutdown"
            )
        await asyncio.shield(self._shutdown_task)

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def _shutdown(self) -> None:
        assert self._server is not None
        assert self._pool is not None
        assert self._stopped is not None
        self._draining = True
        for stream in list(self._streams):
            stream.drain()
        waits = [asyncio.ensure_future(stream.wait_idle()) for stream in self._streams]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=self._shutdown_timeout)
            for wait in pending:
                wait.cancel()
        for stream in list(self._streams):
            stream.shut_down()
            stream.end()
        # The streams end by themselves once their results are written; the grace only
        # bounds handlers that ignore cancellation.
        await self._server.stop(grace=self._shutdown_timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if not self._stopped.done():
            self._stopped.set_result(None)
        logger.info("tock worker on %s stopped", self._address)

    # --- for the servicer ---

    def _list_handlers(self) -> pb.ListHandlersResponse:
        return convert.list_handlers_response(list(self._registry), SDK)

    async def _serve_stream(
        self,
        requests: Any,
        context: grpc.aio.ServicerContext[pb.ExecuteRequest, pb.ExecuteResponse],
    ) -> None:
        assert self._pool is not None
        stream = ExecuteStream(
            self._registry,
            pool=self._pool,
            cleanup_timeout=self._shutdown_timeout,
            draining=self._draining,
        )
        if self._draining:
            stream.end()
        self._streams.add(stream)
        try:
            await stream.serve(requests, context)
        finally:
            self._streams.discard(stream)


class _Servicer(pb_grpc.HandlerServiceServicer):
    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    async def ListHandlers(
        self,
        request: pb.ListHandlersRequest,
        context: grpc.aio.ServicerContext[pb.ListHandlersRequest, pb.ListHandlersResponse],
    ) -> pb.ListHandlersResponse:
        return self._worker._list_handlers()

    async def Execute(
        self,
        request_iterator: Any,
        context: grpc.aio.ServicerContext[pb.ExecuteRequest, pb.ExecuteResponse],
    ) -> None:
        await self._worker._serve_stream(request_iterator, context)


def _bound_address(listen: str, port: int) -> str:
    if listen.startswith("unix:"):
        return listen
    host, _, _ = listen.rpartition(":")
    return f"{host}:{port}"
