"""Executions over one Execute stream, driven as the agent drives them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import grpc
from fake_agent import TIMEOUT, Serve, timestamp

import tock
from tock._gen import handler_pb2 as pb


@tock.handler
def echo(ctx: tock.ExecutionContext, payload: bytes) -> bytes:
    return payload


@tock.handler("async-json")
async def async_json(ctx: tock.ExecutionContext, payload: bytes) -> dict[str, Any]:
    return {"thread": threading.current_thread().name, "size": len(payload)}


@tock.handler("sync-text")
def sync_text(ctx: tock.ExecutionContext, payload: bytes) -> str:
    return f"thread={threading.current_thread().name}"


async def test_echo_round_trip(serve: Serve) -> None:
    _, agent = await serve(echo)
    stream = agent.open()

    raw = await stream.start("echo", b"\x00\x01binary")
    doc = await stream.start("echo", b'{"a": 1}')

    result = await stream.result(raw)
    assert result.WhichOneof("outcome") == "output"
    assert result.output.data == b"\x00\x01binary"
    assert result.output.content_type == "application/octet-stream"
    result = await stream.result(doc)
    assert result.output.data == b'{"a": 1}'
    assert result.output.content_type == "application/json"
    assert stream.kinds(raw) == ["result"]


async def test_sync_and_async_handlers(serve: Serve) -> None:
    _, agent = await serve(async_json, sync_text)
    stream = agent.open()

    a = await stream.start("async-json", b"abc")
    s = await stream.start("sync-text")

    result = await stream.result(a)
    assert result.output.content_type == "application/json"
    assert json.loads(result.output.data) == {
        "thread": threading.current_thread().name,
        "size": 3,
    }
    result = await stream.result(s)
    assert result.output.content_type == "text/plain; charset=utf-8"
    assert result.output.data.decode().startswith("thread=tock-handler")


async def test_many_concurrent_executions_on_one_stream(serve: Serve) -> None:
    n = 200
    running = 0
    all_running = asyncio.Event()

    @tock.handler
    async def gate(ctx: tock.ExecutionContext, payload: bytes) -> bytes:
        nonlocal running
        running += 1
        if running == n:
            all_running.set()
        await all_running.wait()  # Returns only once every execution runs at once.
        return ctx.execution_id.encode()

    _, agent = await serve(gate)
    stream = agent.open()
    ids = [await stream.start("gate") for _ in range(n)]

    await stream.read_until(lambda: len(stream.results) == n)
    for execution_id in ids:
        assert stream.results[execution_id].output.data == execution_id.encode()


async def test_sync_handlers_run_in_parallel_up_to_the_pool_size(serve: Serve) -> None:
    n = 4
    barrier = threading.Barrier(n, timeout=TIMEOUT)

    @tock.handler
    def meet(ctx: tock.ExecutionContext, payload: bytes) -> int:
        return barrier.wait()

    _, agent = await serve(meet, max_sync_workers=n)
    stream = agent.open()
    for _ in range(n):
        await stream.start("meet")

    await stream.read_until(lambda: len(stream.results) == n)
    arrivals = sorted(json.loads(r.output.data) for r in stream.results.values())
    assert arrivals == list(range(n))


async def test_context_carries_the_start(serve: Serve) -> None:
    seen: list[tock.ExecutionContext] = []

    @tock.handler
    async def inspect(ctx: tock.ExecutionContext, payload: bytes) -> None:
        assert tock.current_execution() is ctx
        seen.append(ctx)

    @tock.handler
    def inspect_sync(ctx: tock.ExecutionContext, payload: bytes) -> None:
        assert tock.current_execution() is ctx
        seen.append(ctx)

    _, agent = await serve(inspect, inspect_sync)
    stream = agent.open()
    nominal = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    fields: dict[str, Any] = {
        "job": "nightly",
        "attempt": 3,
        "nominal_time": timestamp(nominal),
        "lease_epoch": 42,
        "shard_index": 2,
        "shard_total": 8,
        "content_type": "application/json",
        "trace_context": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    }
    for name in ("inspect", "inspect_sync"):
        execution_id = await stream.start(name, deadline=timedelta(minutes=5), **fields)
        result = await stream.result(execution_id)
        assert result.output.data == b""

        ctx = seen.pop()
        assert ctx.execution_id == execution_id
        assert ctx.handler == name
        assert ctx.job == "nightly"
        assert ctx.attempt == 3
        assert ctx.nominal_time == nominal
        assert ctx.lease_epoch == 42
        assert (ctx.shard_index, ctx.shard_total) == (2, 8)
        assert ctx.content_type == "application/json"
        assert ctx.trace_context == fields["trace_context"]
        assert ctx.deadline is not None
        assert ctx.deadline.tzinfo is not None
        assert timedelta(minutes=4) < ctx.deadline - datetime.now(timezone.utc)
        assert not ctx.cancelled


async def test_progress_logs_and_heartbeats_come_before_the_result(serve: Serve) -> None:
    def report(ctx: tock.ExecutionContext) -> str:
        ctx.progress(0.25, "a quarter")
        ctx.log("working", level="warning")
        ctx.heartbeat()
        ctx.progress(1.0)
        return "done"

    @tock.handler
    async def reporter(ctx: tock.ExecutionContext, payload: bytes) -> str:
        return report(ctx)

    @tock.handler
    def reporter_sync(ctx: tock.ExecutionContext, payload: bytes) -> str:
        return report(ctx)

    _, agent = await serve(reporter, reporter_sync)
    stream = agent.open()
    for name in ("reporter", "reporter_sync"):
        execution_id = await stream.start(name)
        await stream.result(execution_id)

        assert stream.kinds(execution_id) == ["progress", "log", "heartbeat", "progress", "result"]
        first, log, _, last, result = stream.messages[execution_id]
        assert (first.progress.fraction, first.progress.message) == (0.25, "a quarter")
        assert (log.log.level, log.log.message) == ("WARNING", "working")
        age = datetime.now(timezone.utc) - log.log.time.ToDatetime(tzinfo=timezone.utc)
        assert timedelta(0) <= age < timedelta(seconds=TIMEOUT)
        assert (last.progress.fraction, last.progress.message) == (1.0, "")
        assert result.result.output.data == b"done"


async def test_handler_errors(serve: Serve) -> None:
    class QuotaExceeded(tock.HandlerError):
        pass

    @tock.handler
    async def retry_later(ctx: tock.ExecutionContext, payload: bytes) -> None:
        raise tock.HandlerError("upstream busy", "Busy", retry_after=1.5)

    @tock.handler
    def give_up(ctx: tock.ExecutionContext, payload: bytes) -> None:
        raise tock.NonRetryableError("bad input", "InvalidInput")

    @tock.handler
    async def quota(ctx: tock.ExecutionContext, payload: bytes) -> None:
        raise QuotaExceeded("no quota left", retry_after=timedelta(minutes=1))

    @tock.handler
    def crash(ctx: tock.ExecutionContext, payload: bytes) -> None:
        raise KeyError("missing")

    _, agent = await serve(retry_later, give_up, quota, crash)
    stream = agent.open()

    r = (await stream.result(await stream.start("retry_later"))).error
    assert (r.message, r.kind, r.retryable) == ("upstream busy", "Busy", True)
    assert r.cause == pb.ERROR_CAUSE_UNSPECIFIED
    assert r.HasField("retry_after")
    assert r.retry_after.ToTimedelta() == timedelta(seconds=1.5)

    r = (await stream.result(await stream.start("give_up"))).error
    assert (r.message, r.kind, r.retryable) == ("bad input", "InvalidInput", False)
    assert not r.HasField("retry_after")

    r = (await stream.result(await stream.start("quota"))).error
    assert (r.kind, r.retryable) == ("QuotaExceeded", True)
    assert r.retry_after.ToTimedelta() == timedelta(minutes=1)

    execution_id = await stream.start("crash")
    r = (await stream.result(execution_id)).error
    assert (r.message, r.kind, r.retryable) == ("'missing'", "KeyError", True)
    assert r.cause == pb.ERROR_CAUSE_PANIC
    log = stream.messages[execution_id][0].log
    assert log.level == "ERROR"
    assert "Traceback" in log.message
    assert "KeyError: 'missing'" in log.message


async def test_unknown_handler(serve: Serve) -> None:
    _, agent = await serve(echo)
    stream = agent.open()

    r = (await stream.result(await stream.start("nope"))).error
    assert r.cause == pb.ERROR_CAUSE_UNKNOWN_HANDLER
    assert not r.retryable
    assert r.kind == "UnknownHandler"
    assert "'nope'" in r.message
    assert "echo" in r.message


async def test_json_payloads(serve: Serve) -> None:
    @tock.handler("add", json=True)
    async def add(ctx: tock.ExecutionContext, payload: Any) -> Any:
        return {"sum": sum(payload["numbers"])}

    _, agent = await serve(add)
    stream = agent.open()

    result = await stream.result(await stream.start("add", b'{"numbers": [1, 2, 3]}'))
    assert json.loads(result.output.data) == {"sum": 6}
    r = (await stream.result(await stream.start("add", b"{not json"))).error
    assert (r.kind, r.retryable) == ("InvalidPayload", False)


async def test_unencodable_result(serve: Serve) -> None:
    @tock.handler
    async def bad(ctx: tock.ExecutionContext, payload: bytes) -> object:
        return object()

    _, agent = await serve(bad)
    stream = agent.open()

    r = (await stream.result(await stream.start("bad"))).error
    assert (r.kind, r.retryable, r.cause) == ("InvalidResult", False, pb.ERROR_CAUSE_PANIC)


async def test_cancel_async_handler(serve: Serve) -> None:
    interrupted = asyncio.Event()

    @tock.handler
    async def forever(ctx: tock.ExecutionContext, payload: bytes) -> None:
        ctx.heartbeat()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            assert ctx.cancelled
            assert ctx.cancel_reason == "job deleted"
            interrupted.set()
            raise

    _, agent = await serve(forever)
    stream = agent.open()
    execution_id = await stream.start("forever")
    await stream.wait_for(execution_id, "heartbeat")

    await stream.cancel(execution_id, "job deleted")
    r = (await stream.result(execution_id)).error
    assert r.cause == pb.ERROR_CAUSE_CANCELLED
    assert not r.retryable
    assert "job deleted" in r.message
    assert interrupted.is_set()


async def test_cancel_reports_cancellation_even_if_the_handler_returns(serve: Serve) -> None:
    @tock.handler
    async def stubborn(ctx: tock.ExecutionContext, payload: bytes) -> str:
        ctx.heartbeat()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        return "finished anyway"

    _, agent = await serve(stubborn)
    stream = agent.open()
    execution_id = await stream.start("stubborn")
    await stream.wait_for(execution_id, "heartbeat")

    await stream.cancel(execution_id)
    r = (await stream.result(execution_id)).error
    assert r.cause == pb.ERROR_CAUSE_CANCELLED


async def test_cancel_sync_handler(serve: Serve) -> None:
    release = threading.Event()

    @tock.handler
    def poll(ctx: tock.ExecutionContext, payload: bytes) -> str:
        ctx.heartbeat()
        assert ctx.wait_for_cancelled_sync(TIMEOUT)
        ctx.log("cleaning up")
        release.wait(TIMEOUT)
        return "ignored"

    _, agent = await serve(poll)
    stream = agent.open()
    execution_id = await stream.start("poll")
    await stream.wait_for(execution_id, "heartbeat")

    await stream.cancel(execution_id)
    # The sync handler cannot be interrupted: the result waits for it to return.
    await stream.wait_for(execution_id, "log")
    assert execution_id not in stream.results
    release.set()
    r = (await stream.result(execution_id)).error
    assert r.cause == pb.ERROR_CAUSE_CANCELLED


async def test_cancel_sync_handler_waiting_for_a_thread(serve: Serve) -> None:
    release = threading.Event()
    ran: list[str] = []

    @tock.handler
    def busy(ctx: tock.ExecutionContext, payload: bytes) -> str:
        ran.append(ctx.execution_id)
        ctx.heartbeat()
        release.wait(TIMEOUT)
        return "done"

    _, agent = await serve(busy, max_sync_workers=1)
    stream = agent.open()
    first = await stream.start("busy")
    await stream.wait_for(first, "heartbeat")
    queued = await stream.start("busy")

    await stream.cancel(queued)
    r = (await stream.result(queued)).error
    assert r.cause == pb.ERROR_CAUSE_CANCELLED
    release.set()
    assert (await stream.result(first)).output.data == b"done"
    assert ran == [first]


async def test_cancel_of_unknown_execution_is_ignored(serve: Serve) -> None:
    _, agent = await serve(echo)
    stream = agent.open()
    await stream.cancel("never-started")
    result = await stream.result(await stream.start("echo", b"x"))
    assert result.output.data == b"x"


async def test_deadline_cancels_async_handler(serve: Serve) -> None:
    interrupted = asyncio.Event()

    @tock.handler
    async def slow(ctx: tock.ExecutionContext, payload: bytes) -> None:
        try:
            await ctx.wait_for_cancelled()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            interrupted.set()
            raise

    _, agent = await serve(slow)
    stream = agent.open()

    execution_id = await stream.start("slow", deadline=timedelta(milliseconds=200))
    r = (await stream.result(execution_id)).error
    assert r.cause == pb.ERROR_CAUSE_DEADLINE_EXCEEDED
    assert r.retryable
    await asyncio.wait_for(interrupted.wait(), TIMEOUT)


async def test_deadline_reports_sync_handler_at_once(serve: Serve) -> None:
    release = threading.Event()
    saw_cancelled = threading.Event()

    @tock.handler
    def stuck(ctx: tock.ExecutionContext, payload: bytes) -> str:
        if ctx.wait_for_cancelled_sync(TIMEOUT):
            saw_cancelled.set()
        release.wait(TIMEOUT)
        ctx.log("too late")  # Dropped: the result is out already.
        return "too late"

    _, agent = await serve(stuck, echo)
    stream = agent.open()

    execution_id = await stream.start("stuck", deadline=timedelta(milliseconds=200))
    r = (await stream.result(execution_id)).error
    assert r.cause == pb.ERROR_CAUSE_DEADLINE_EXCEEDED
    assert saw_cancelled.wait(TIMEOUT)
    release.set()
    # Nothing more arrives for the timed-out execution.
    other = await stream.start("echo", b"next")
    await stream.result(other)
    assert stream.kinds(execution_id) == ["result"]


async def test_deadline_already_passed(serve: Serve) -> None:
    calls = 0

    @tock.handler
    async def never(ctx: tock.ExecutionContext, payload: bytes) -> None:
        nonlocal calls
        calls += 1

    _, agent = await serve(never)
    stream = agent.open()
    r = (await stream.result(await stream.start("never", deadline=timedelta(seconds=-1)))).error
    assert r.cause == pb.ERROR_CAUSE_DEADLINE_EXCEEDED
    assert calls == 0


async def test_stream_close_cancels_running_handlers(serve: Serve) -> None:
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    sync_saw_cancel = asyncio.Event()

    @tock.handler
    async def forever(ctx: tock.ExecutionContext, payload: bytes) -> None:
        ctx.heartbeat()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            interrupted.set()
            raise

    @tock.handler
    def forever_sync(ctx: tock.ExecutionContext, payload: bytes) -> None:
        ctx.heartbeat()
        if ctx.wait_for_cancelled_sync(TIMEOUT):
            loop.call_soon_threadsafe(sync_saw_cancel.set)

    _, agent = await serve(forever, forever_sync)
    stream = agent.open()
    a = await stream.start("forever")
    s = await stream.start("forever_sync")
    await stream.wait_for(a, "heartbeat")
    await stream.wait_for(s, "heartbeat")

    stream.call.cancel()
    await asyncio.wait_for(interrupted.wait(), TIMEOUT)
    await asyncio.wait_for(sync_saw_cancel.wait(), TIMEOUT)


async def test_half_close_finishes_running_executions(serve: Serve) -> None:
    release = asyncio.Event()

    @tock.handler
    async def wait(ctx: tock.ExecutionContext, payload: bytes) -> str:
        ctx.heartbeat()
        await release.wait()
        return "ok"

    _, agent = await serve(wait)
    stream = agent.open()
    execution_id = await stream.start("wait")
    await stream.wait_for(execution_id, "heartbeat")

    await stream.call.done_writing()
    release.set()
    await stream.read_to_end()
    assert stream.results[execution_id].output.data == b"ok"
    assert await stream.call.code() == grpc.StatusCode.OK


async def test_streams_are_independent(serve: Serve) -> None:
    _, agent = await serve(echo)
    one, two = agent.open(), agent.open()
    a = await one.start("echo", b"one", execution_id="same-id")
    b = await two.start("echo", b"two", execution_id="same-id")
    assert (await one.result(a)).output.data == b"one"
    assert (await two.result(b)).output.data == b"two"


async def test_heartbeats_are_throttled(serve: Serve) -> None:
    calls = 1000

    @tock.handler
    async def beat(ctx: tock.ExecutionContext, payload: bytes) -> float:
        start = asyncio.get_running_loop().time()
        for _ in range(calls):
            ctx.heartbeat()
        return asyncio.get_running_loop().time() - start

    @tock.handler
    def beat_sync(ctx: tock.ExecutionContext, payload: bytes) -> float:
        start = datetime.now(timezone.utc)

        def beat_often() -> None:
            for _ in range(calls // 4):
                ctx.heartbeat()

        threads = [threading.Thread(target=beat_often) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return (datetime.now(timezone.utc) - start).total_seconds()

    _, agent = await serve(beat, beat_sync)
    stream = agent.open()
    for name in ("beat", "beat_sync"):
        execution_id = await stream.start(name)
        result = await stream.result(execution_id)
        elapsed = json.loads(result.output.data)
        beats = stream.kinds(execution_id).count("heartbeat")
        # The first heartbeat is sent at once; later ones at most once a second.
        assert 1 <= beats <= 1 + int(elapsed), (name, beats, elapsed)


@tock.handler
def upstream_jobs(ctx: tock.ExecutionContext, payload: bytes) -> dict[str, Any]:
    return {u.job: json.loads(u.output) for u in ctx.upstream}


async def test_upstream_results_reach_the_handler(serve: Serve) -> None:
    _, agent = await serve(upstream_jobs)
    stream = agent.open()
    exec_id = await stream.start(
        "upstream_jobs",
        upstream=[
            pb.Upstream(
                job="extract",
                execution_id="e-1",
                output=b'{"rows": 3}',
                content_type="application/json",
            )
        ],
    )
    result = await stream.result(exec_id)
    assert json.loads(result.output.data) == {"extract": {"rows": 3}}


async def test_start_time_delays_the_handler(serve: Serve) -> None:
    started: list[datetime] = []

    @tock.handler
    async def note(ctx: tock.ExecutionContext, payload: bytes) -> None:
        started.append(datetime.now(timezone.utc))

    _, agent = await serve(note)
    stream = agent.open()

    # Handed over ahead of its time: the handler starts then, not before.
    at = datetime.now(timezone.utc) + timedelta(milliseconds=150)
    first = await stream.start("note", start_time=timestamp(at))
    assert (await stream.result(first)).WhichOneof("outcome") == "output"
    assert started[0] >= at

    # Cancelled while it waits: the handler never runs.
    later = timestamp(datetime.now(timezone.utc) + timedelta(hours=1))
    waiting = await stream.start("note", start_time=later)
    await stream.cancel(waiting, "job paused")
    r = (await stream.result(waiting)).error
    assert r.cause == pb.ERROR_CAUSE_CANCELLED
    assert len(started) == 1

    # A start time already past runs at once.
    past = timestamp(datetime.now(timezone.utc) - timedelta(hours=1))
    now = await stream.start("note", start_time=past)
    assert (await stream.result(now)).WhichOneof("outcome") == "output"
    assert len(started) == 2
