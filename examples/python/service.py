"""An example service that serves three Tock handlers.

    python examples/python/service.py --listen 127.0.0.1:7403

- echo returns its payload unchanged;
- sleep takes {"ms": N}, sleeps N milliseconds (stopping early when cancelled) and returns
  {"slept_ms": N};
- fail always fails with a retryable error of kind "Deliberate".

It prints "listening on <address>" once it serves, and stops gracefully on SIGINT or SIGTERM.
When TOCK_HANDLER_TOKEN is set, the agent must present it as a bearer token.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import Any

import tock


@tock.handler
def echo(ctx: tock.ExecutionContext, payload: bytes) -> bytes:
    """Returns the payload as it came: a sync handler, run on the worker's thread pool."""
    return payload


@tock.handler(json=True)
async def sleep(ctx: tock.ExecutionContext, payload: Any) -> dict[str, int]:
    """Sleeps for payload["ms"] milliseconds; cancellation interrupts the sleep."""
    if not isinstance(payload, dict) or not isinstance(payload.get("ms"), int) or payload["ms"] < 0:
        raise tock.NonRetryableError('payload must be {"ms": N} with N >= 0', kind="InvalidInput")
    ms: int = payload["ms"]
    ctx.log(f"sleeping {ms} ms")
    await asyncio.sleep(ms / 1000)
    ctx.progress(1.0, f"slept {ms} ms")
    return {"slept_ms": ms}


@tock.handler
async def fail(ctx: tock.ExecutionContext, payload: bytes) -> None:
    """Always fails, retryably."""
    raise tock.HandlerError("fail handler always fails", kind="Deliberate")


async def serve(listen: str, token: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with tock.Worker(handlers=[echo, sleep, fail], listen=listen, token=token) as worker:
        print(f"listening on {worker.address}", flush=True)
        await stop.wait()
        print("shutting down", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Serves the echo, sleep and fail handlers to a Tock agent.",
        epilog="When TOCK_HANDLER_TOKEN is set, the agent must present it as a bearer token.",
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:7403",
        help='host:port or unix:///path to serve on (default "127.0.0.1:7403")',
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(args.listen, os.environ.get("TOCK_HANDLER_TOKEN") or None))


if __name__ == "__main__":
    main()
