"""An OpenTelemetry span around every handler call, when opentelemetry-api is installed.

The span joins the execution's trace: its parent is the W3C trace context (``traceparent``,
``tracestate``) the agent passes in the Start message, so one trace shows the fire, the
dispatch, the agent and the handler. Spans the handler starts nest under it. Without
opentelemetry-api (the ``otel`` extra), handlers run untraced and nothing is imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ._errors import HandlerError
from ._version import __version__

if TYPE_CHECKING:
    from ._context import ExecutionContext

try:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised by test_tracing with the import blocked
    enabled = False
else:
    enabled = True

SCOPE = "tock"
"""The instrumentation scope of the handler spans."""

Outcome = Callable[[BaseException | None], str]
"""Names how the execution ends given the handler's exception (None when it returned)."""


def handler_span(
    ctx: ExecutionContext, outcome: Outcome
) -> contextlib.AbstractContextManager[None]:
    """Returns a context manager that runs its body inside the execution's handler span.

    Enter it where the handler runs (its task, or its thread) so that the span is the current
    one inside the handler.
    """
    if not enabled:
        return contextlib.nullcontext()
    return _span(ctx, outcome)


@contextlib.contextmanager
def _span(ctx: ExecutionContext, outcome: Outcome) -> Iterator[None]:
    parent = TraceContextTextMapPropagator().extract(carrier=ctx.trace_context)
    tracer = trace.get_tracer(SCOPE, __version__)
    attributes: dict[str, str | int] = {
        "tock.execution.id": ctx.execution_id,
        "tock.job": ctx.job,
        "tock.handler": ctx.handler,
        "tock.attempt": ctx.attempt,
        "tock.lease_epoch": ctx.lease_epoch,
    }
    if ctx.shard_total > 1:
        attributes["tock.shard.index"] = ctx.shard_index
        attributes["tock.shard.total"] = ctx.shard_total
    with tracer.start_as_current_span(
        f"tock.handler {ctx.handler}",
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except BaseException as e:
            span.set_attribute("tock.outcome", outcome(e))
            if isinstance(e, HandlerError):
                span.set_attribute("tock.error.kind", e.kind)
                span.set_attribute("tock.error.retryable", e.retryable)
            span.record_exception(e)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(e) or type(e).__name__))
            raise
        span.set_attribute("tock.outcome", outcome(None))
