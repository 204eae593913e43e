"""The public surface, without a worker."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest

import tock
from tock._convert import EncodeError, encode_output


def test_public_names() -> None:
    assert sorted(tock.__all__) == [
        "ExecutionContext",
        "HandlerError",
        "NonRetryableError",
        "Upstream",
        "Worker",
        "__version__",
        "current_execution",
        "handler",
    ]


def test_decorator_forms() -> None:
    @tock.handler
    def bare(ctx: tock.ExecutionContext, payload: bytes) -> None: ...

    @tock.handler()
    async def called(ctx: tock.ExecutionContext, payload: bytes) -> None: ...

    @tock.handler("custom", json=True)
    def named(ctx: tock.ExecutionContext, payload: Any) -> None: ...

    @tock.handler(name="kw")
    def keyword(ctx: tock.ExecutionContext, payload: bytes) -> None: ...

    worker = tock.Worker([bare, called, named, keyword])
    assert worker.handlers == ["bare", "called", "custom", "kw"]
    # The decorator returns the function itself, still callable directly.
    assert bare(tock.ExecutionContext(), b"") is None


def test_decorator_checks_the_signature() -> None:
    with pytest.raises(TypeError, match=r"\(ctx, payload\)"):

        @tock.handler
        def one_arg(ctx: tock.ExecutionContext) -> None: ...

    with pytest.raises(ValueError, match="non-empty"):
        tock.handler("")


def test_handler_errors() -> None:
    e = tock.HandlerError("busy", "Busy", retry_after=2)
    assert (str(e), e.message, e.kind, e.retryable) == ("busy", "busy", "Busy", True)
    assert e.retry_after == timedelta(seconds=2)

    n = tock.NonRetryableError("bad")
    assert (n.kind, n.retryable, n.retry_after) == ("", False, None)
    assert isinstance(n, tock.HandlerError)

    class InvalidInput(tock.NonRetryableError):
        pass

    assert InvalidInput("x").kind == "InvalidInput"
    assert InvalidInput("x", "Custom").kind == "Custom"
    with pytest.raises(ValueError, match="negative"):
        tock.HandlerError("x", retry_after=-1)


@dataclasses.dataclass
class Point:
    x: int
    y: int


@pytest.mark.parametrize(
    ("value", "data", "content_type"),
    [
        (b"\xff\x00", b"\xff\x00", "application/octet-stream"),
        (b"", b"", "application/octet-stream"),
        (b'{"a":1}', b'{"a":1}', "application/json"),
        (b" [1, 2]", b" [1, 2]", "application/json"),
        (b"hello", b"hello", "application/octet-stream"),
        (bytearray(b"42"), b"42", "application/json"),
        ("héllo", "héllo".encode(), "text/plain; charset=utf-8"),
        (None, b"", ""),
        ({"b": [1, None]}, b'{"b":[1,null]}', "application/json"),
        (["é"], '["é"]'.encode(), "application/json"),
        (3.5, b"3.5", "application/json"),
        (True, b"true", "application/json"),
        (Point(1, 2), b'{"x":1,"y":2}', "application/json"),
    ],
)
def test_encode_output(value: object, data: bytes, content_type: str) -> None:
    output = encode_output(value)
    assert (output.data, output.content_type) == (data, content_type)


def test_encode_output_rejects_what_json_cannot_carry() -> None:
    with pytest.raises(EncodeError, match="set"):
        encode_output({1, 2})


async def test_context_outside_a_worker() -> None:
    ctx = tock.ExecutionContext(execution_id="e1", job="j")
    ctx.progress(0.5, "half")
    ctx.log("hi")
    ctx.heartbeat()
    assert not ctx.cancelled
    assert ctx.cancel_reason is None
    assert not ctx.wait_for_cancelled_sync(0)
    assert ctx.nominal_time.tzinfo is not None
    with pytest.raises(ValueError, match="between 0 and 1"):
        ctx.progress(1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        ctx.progress(float("nan"))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ctx.wait_for_cancelled(), 0.01)


def test_current_execution_outside_a_handler() -> None:
    with pytest.raises(RuntimeError, match="outside a handler"):
        tock.current_execution()
