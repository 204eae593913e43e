"""The worker's lifecycle, its handler list and its token check."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from fake_agent import TIMEOUT, Agent, Serve, Stream

import tock
from tock._gen import handler_pb2 as pb


@tock.handler
def echo(ctx: tock.ExecutionContext, payload: bytes) -> bytes:
    return payload


@tock.handler("other-name")
async def renamed(ctx: tock.ExecutionContext, payload: bytes) -> None:
    return None


async def eventually(condition: Callable[[], bool]) -> None:
    """Polls a condition until it holds, failing after TIMEOUT."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.001)


async def start_and_read(stream: Stream) -> None:
    # The worker may refuse the call before the write completes, or only on the read.
    await stream.start("echo", b"x")
    await stream.read()


async def test_list_handlers(serve: Serve) -> None:
    worker, agent = await serve(echo, renamed)

    response = await agent.list_handlers()
    assert [h.name for h in response.handlers] == ["echo", "other-name"]
    assert response.sdk == f"tock-python/{tock.__version__}"
    assert worker.handlers == ["echo", "other-name"]


async def test_token_is_required_when_set(serve: Serve) -> None:
    worker, _ = await serve(echo, token="s3cret")
    channel = grpc.aio.insecure_channel(worker.address)
    try:
        for metadata in (None, [("authorization", "Bearer wrong")], [("authorization", "s3cret")]):
            other = Agent(channel, metadata)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await other.list_handlers()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

            with pytest.raises(grpc.aio.AioRpcError) as info:
                await start_and_read(other.open())
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

        good = Agent(channel, [("authorization", "Bearer s3cret")])
        assert [h.name for h in (await good.list_handlers()).handlers] == ["echo"]
        stream = good.open()
        result = await stream.result(await stream.start("echo", b"x"))
        assert result.output.data == b"x"
    finally:
        await channel.close()


async def test_unix_socket(serve: Serve, tmp_path: Path) -> None:
    path = tmp_path / "tock.sock"
    worker, agent = await serve(echo, listen=f"unix://{path}")

    assert worker.address == f"unix://{path}"
    stream = agent.open()
    result = await stream.result(await stream.start("echo", b"over a socket"))
    assert result.output.data == b"over a socket"


async def test_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = tock.Worker([echo], listen=f"127.0.0.1:{port}")
        with pytest.raises(OSError, match="cannot listen"):
            await worker.start()


async def test_shutdown_lets_running_executions_finish(serve: Serve) -> None:
    release = asyncio.Event()

    @tock.handler
    async def wait(ctx: tock.ExecutionContext, payload: bytes) -> str:
        ctx.heartbeat()
        await release.wait()
        return "finished"

    worker, agent = await serve(wait, shutdown_timeout=TIMEOUT)
    stream = agent.open()
    running = await stream.start("wait")
    await stream.wait_for(running, "heartbeat")

    shutdown = asyncio.create_task(worker.shutdown())
    await eventually(lambda: worker._draining)
    refused = await stream.start("wait")
    r = (await stream.result(refused)).error
    assert (r.kind, r.retryable, r.cause) == ("ShuttingDown", True, pb.ERROR_CAUSE_UNSPECIFIED)
    assert not shutdown.done()

    release.set()
    await stream.read_to_end()
    assert stream.results[running].output.data == b"finished"
    await asyncio.wait_for(shutdown, TIMEOUT)


async def test_shutdown_cancels_executions_after_the_timeout(serve: Serve) -> None:
    interrupted = asyncio.Event()

    @tock.handler
    async def forever(ctx: tock.ExecutionContext, payload: bytes) -> None:
        ctx.heartbeat()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            interrupted.set()
            raise

    worker, agent = await serve(forever, shutdown_timeout=0.2)
    stream = agent.open()
    execution_id = await stream.start("forever")
    await stream.wait_for(execution_id, "heartbeat")

    await asyncio.wait_for(worker.shutdown(), TIMEOUT)
    assert interrupted.is_set()
    await stream.read_to_end()
    r = stream.results[execution_id].error
    assert (r.kind, r.retryable, r.cause) == ("ShuttingDown", True, pb.ERROR_CAUSE_UNSPECIFIED)
    assert await stream.call.code() == grpc.StatusCode.OK


async def test_run_until_cancelled() -> None:
    worker = tock.Worker([echo], listen="127.0.0.1:0", shutdown_timeout=1.0)
    run = asyncio.create_task(worker.run())
    await eventually(lambda: bool(worker._address))
    async with grpc.aio.insecure_channel(worker.address) as channel:
        agent = Agent(channel)
        assert [h.name for h in (await agent.list_handlers()).handlers] == ["echo"]

        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await agent.list_handlers()
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_run_returns_after_shutdown() -> None:
    async with tock.Worker([echo], listen="127.0.0.1:0") as worker:
        run = asyncio.create_task(worker.run())
        await worker.shutdown()
        await asyncio.wait_for(run, TIMEOUT)
        await worker.shutdown()  # Idempotent.


def test_worker_rejects_bad_handlers() -> None:
    def plain(ctx: tock.ExecutionContext, payload: bytes) -> bytes:
        return payload

    with pytest.raises(TypeError, match=r"decorate it with @tock\.handler"):
        tock.Worker([plain])

    @tock.handler("echo")
    def another_echo(ctx: tock.ExecutionContext, payload: bytes) -> bytes:
        return payload

    with pytest.raises(ValueError, match="more than one handler is named 'echo'"):
        tock.Worker([echo, another_echo])
    with pytest.raises(ValueError, match="at least one handler"):
        tock.Worker([])
    with pytest.raises(ValueError, match="max_sync_workers"):
        tock.Worker([echo], max_sync_workers=0)
