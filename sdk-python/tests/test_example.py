"""The example service, run as a process and driven over loopback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from fake_agent import TIMEOUT, Agent

from tock._gen import handler_pb2 as pb

SERVICE = Path(__file__).resolve().parents[2] / "examples" / "python" / "service.py"


TOKEN = "example-token"


@pytest.fixture
async def service() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SERVICE),
        "--listen",
        "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "TOCK_APP_TOKEN": TOKEN},
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
        match = re.search(r"listening on (\S+)", line.decode())
        assert match, f"unexpected first line: {line!r}"
        yield process, match.group(1)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_example_service(service: tuple[asyncio.subprocess.Process, str]) -> None:
    process, address = service
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await Agent(channel).list_handlers()
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

        agent = Agent(channel, [("authorization", f"Bearer {TOKEN}")])
        names = [h.name for h in (await agent.list_handlers()).handlers]
        assert names == ["echo", "sleep", "fail"]

        stream = agent.open()
        echo = await stream.start("echo", b"\x00bytes\xff")
        slept = await stream.start("sleep", b'{"ms": 20}')
        failed = await stream.start("fail")
        cancelled = await stream.start("sleep", b'{"ms": 60000}')
        late = await stream.start("sleep", b'{"ms": 60000}', deadline=timedelta(milliseconds=100))
        invalid = await stream.start("sleep", b'{"ms": "soon"}')
        out_of_range = await stream.start("sleep", b'{"ms": -5}')
        empty = await stream.start("sleep")

        assert (await stream.result(echo)).output.data == b"\x00bytes\xff"
        result = await stream.result(slept)
        assert json.loads(result.output.data) == {"slept_ms": 20}
        assert result.output.content_type == "application/json"
        progress = [
            (m.progress.fraction, m.progress.message)
            for m in stream.messages[slept]
            if m.WhichOneof("kind") == "progress"
        ]
        assert progress == [(0.0, "sleeping"), (1.0, "awake")]
        logs = [m.log.message for m in stream.messages[slept] if m.WhichOneof("kind") == "log"]
        assert logs == ["sleeping for 20 ms"]
        error = (await stream.result(failed)).error
        assert (error.message, error.kind, error.retryable) == (
            "fail handler always fails",
            "Deliberate",
            True,
        )
        await stream.wait_for(cancelled, "log")
        await stream.cancel(cancelled, "test")
        assert (await stream.result(cancelled)).error.cause == pb.ERROR_CAUSE_CANCELLED
        assert (await stream.result(late)).error.cause == pb.ERROR_CAUSE_DEADLINE_EXCEEDED
        error = (await stream.result(invalid)).error
        assert (error.kind, error.retryable) == ("InvalidPayload", False)
        error = (await stream.result(out_of_range)).error
        assert (error.message, error.kind, error.retryable) == (
            "sleep: ms must be from 0 to 3600000, got -5",
            "InvalidInput",
            False,
        )
        assert json.loads((await stream.result(empty)).output.data) == {"slept_ms": 0}

        process.send_signal(signal.SIGTERM)
        await stream.read_to_end()
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
