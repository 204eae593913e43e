"""The OpenTelemetry span around each handler, with the otel extra installed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fake_agent import Serve
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tock
from tock import _tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT}-01"

# The global tracer provider can be set once per process: these tests set it when imported.
_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))
trace.set_tracer_provider(_provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans ended during the test."""
    _exporter.clear()
    yield _exporter
    _exporter.clear()


@tock.handler
async def work(ctx: tock.ExecutionContext, payload: bytes) -> str:
    with trace.get_tracer("user").start_as_current_span("user work"):
        pass
    return "ok"


@tock.handler
def work_sync(ctx: tock.ExecutionContext, payload: bytes) -> str:
    with trace.get_tracer("user").start_as_current_span("user work"):
        pass
    return "ok"


@tock.handler
async def fail(ctx: tock.ExecutionContext, payload: bytes) -> None:
    raise tock.NonRetryableError("bad order", kind="Rejected")


@tock.handler
async def crash(ctx: tock.ExecutionContext, payload: bytes) -> None:
    raise KeyError("missing")


@tock.handler
async def wait(ctx: tock.ExecutionContext, payload: bytes) -> None:
    ctx.heartbeat()
    await asyncio.Event().wait()


def by_name(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


async def test_span_joins_the_execution_trace(serve: Serve, spans: InMemorySpanExporter) -> None:
    _, agent = await serve(work, work_sync)
    stream = agent.open()
    for name in ("work", "work_sync"):
        spans.clear()
        await stream.result(
            await stream.start(
                name,
                execution_id=f"{name}-1",
                job="nightly",
                attempt=2,
                lease_epoch=7,
                shard_index=1,
                shard_total=3,
                trace_context={"traceparent": TRACEPARENT},
            )
        )
        handler = by_name(spans, f"tock.handler {name}")
        user = by_name(spans, "user work")
        assert handler.kind == trace.SpanKind.SERVER
        assert format(handler.context.trace_id, "032x") == TRACE_ID
        assert handler.parent is not None
        assert handler.parent.is_remote
        assert format(handler.parent.span_id, "016x") == PARENT
        assert user.parent is not None
        assert user.parent.span_id == handler.context.span_id
        assert handler.status.status_code == trace.StatusCode.UNSET
        assert handler.instrumentation_scope is not None
        assert handler.instrumentation_scope.name == "tock"
        assert dict(handler.attributes or {}) == {
            "tock.execution.id": f"{name}-1",
            "tock.job": "nightly",
            "tock.handler": name,
            "tock.attempt": 2,
            "tock.lease_epoch": 7,
            "tock.shard.index": 1,
            "tock.shard.total": 3,
            "tock.outcome": "SUCCEEDED",
        }


async def test_span_records_failures(serve: Serve, spans: InMemorySpanExporter) -> None:
    _, agent = await serve(fail, crash, wait)
    stream = agent.open()
    await stream.result(await stream.start("fail"))
    await stream.result(await stream.start("crash"))
    await stream.result(await stream.start("wait", deadline=timedelta(milliseconds=50)))
    cancelled = await stream.start("wait", execution_id="to-cancel")
    await stream.wait_for(cancelled, "heartbeat")
    await stream.cancel(cancelled, "operator asked")
    await stream.result(cancelled)

    failed = by_name(spans, "tock.handler fail")
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert failed.status.description == "bad order"
    attributes = dict(failed.attributes or {})
    assert attributes["tock.outcome"] == "FAILED"
    assert attributes["tock.error.kind"] == "Rejected"
    assert attributes["tock.error.retryable"] is False
    assert [e.name for e in failed.events] == ["exception"]

    crashed = by_name(spans, "tock.handler crash")
    assert crashed.status.description == "'missing'"
    assert "tock.error.kind" not in (crashed.attributes or {})

    outcomes = [
        (s.attributes or {})["tock.outcome"]
        for s in spans.get_finished_spans()
        if s.name == "tock.handler wait"
    ]
    assert outcomes == ["TIMED_OUT", "CANCELLED"]


async def test_no_span_without_opentelemetry(
    serve: Serve, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_tracing, "enabled", False)
    _, agent = await serve(work)
    stream = agent.open()
    result = await stream.result(await stream.start("work"))
    assert result.output.data == b"ok"
    assert [s.name for s in spans.get_finished_spans()] == ["user work"]
