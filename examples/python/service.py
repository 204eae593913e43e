"""An example service that serves three Tock handlers, the same as examples/go.

    python examples/python/service.py --listen 127.0.0.1:7403   # or unix:///tmp/example.sock
    tock-agent --app-addr 127.0.0.1:7403 --service example

- echo returns its payload unchanged;
- sleep takes {"ms": N} (0 to 3600000), sleeps N milliseconds, reporting progress and
  heartbeating every second, stops early when cancelled or past its deadline, and returns
  {"slept_ms": N};
- fail always fails with a retryable error of kind "Deliberate".

It prints "listening on <address>" once it serves, and stops gracefully on SIGINT or SIGTERM.
With --token (or $TOCK_APP_TOKEN) set, the agent must send the same token (its --app-token,
which also defaults to $TOCK_APP_TOKEN).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import Any

import tock

MAX_SLEEP_MS = 3_600_000
"""Bounds the sleep handler so that a typo cannot park an execution for days."""


@tock.handler
def echo(ctx: tock.ExecutionContext, payload: bytes) -> bytes:
    """Returns the payload as it came: a sync handler, run on the worker's thread pool."""
    return payload


@tock.handler(json=True)
async def sleep(ctx: tock.ExecutionContext, payload: Any) -> dict[str, int]:
    """Sleeps for payload["ms"] milliseconds; cancellation interrupts the sleep."""
    ms = _sleep_ms(payload)
    ctx.log(f"sleeping for {ms} ms")
    ctx.progress(0.0, "sleeping")
    loop = asyncio.get_running_loop()
    start = loop.time()
    total = ms / 1000
    while (left := start + total - loop.time()) > 0:
        await asyncio.sleep(min(left, 1.0))
        slept = loop.time() - start
        if slept < total:
            ctx.heartbeat()
            ctx.progress(slept / total, f"slept {int(slept * 1000)} of {ms} ms")
    ctx.progress(1.0, "awake")
    return {"slept_ms": ms}


def _sleep_ms(payload: Any) -> int:
    """Reads {"ms": N} as the Go example's typed input does: a missing payload or field is 0."""
    payload = {} if payload is None else payload
    ms = payload.get("ms", 0) if isinstance(payload, dict) else None
    if not isinstance(ms, int) or isinstance(ms, bool):
        raise tock.NonRetryableError(
            f'sleep wants a payload like {{"ms": 100}}, got {payload!r}', kind="InvalidPayload"
        )
    if not 0 <= ms <= MAX_SLEEP_MS:
        raise tock.NonRetryableError(
            f"sleep: ms must be from 0 to {MAX_SLEEP_MS}, got {ms}", kind="InvalidInput"
        )
    return ms


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
        description="Serves the echo, sleep and fail handlers to a Tock agent."
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:7403",
        help='host:port or unix:///path to serve on (default "127.0.0.1:7403")',
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("TOCK_APP_TOKEN", ""),
        help="shared token the agent must send (default: $TOCK_APP_TOKEN)",
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(args.listen, args.token or None))


if __name__ == "__main__":
    main()
