from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from fake_agent import Agent, Metadata, Serve

import tock


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Starts a worker on a free loopback port and returns it with an agent connected to it.

    Everything is stopped after the test, which then fails if any task is left running.
    """
    workers: list[tock.Worker] = []
    channels: list[grpc.aio.Channel] = []

    async def start(
        *handlers: Callable[..., Any],
        metadata: Metadata | None = None,
        listen: str = "127.0.0.1:0",
        **options: Any,
    ) -> tuple[tock.Worker, Agent]:
        options.setdefault("shutdown_timeout", 2.0)
        worker = tock.Worker(list(handlers), listen=listen, **options)
        await worker.start()
        workers.append(worker)
        channel = grpc.aio.insecure_channel(worker.address)
        channels.append(channel)
        return worker, Agent(channel, metadata)

    yield start

    for channel in channels:
        await channel.close()
    for worker in workers:
        await worker.shutdown()
    await _no_tasks_left()


async def _no_tasks_left() -> None:
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    if left:
        await asyncio.wait(left, timeout=2.0)
    left = [t for t in left if not t.done()]
    assert not left, f"tasks left running: {left}"
