"""Runs examples/python/service.py with its handler spans exported to OTLP/HTTP.

Not part of the example: the end-to-end tests start the Python example through this file, so
that the spans the SDK makes around handlers (with opentelemetry-api installed) reach Jaeger,
as they would from a service that installs the OpenTelemetry SDK and an exporter. The virtual
environment has opentelemetry-sdk but no OTLP exporter package, so spans are sent with OTLP's
JSON encoding, which every OTLP/HTTP receiver accepts.

    python example_otel.py path/to/service.py --listen 127.0.0.1:7403

OTEL_EXPORTER_OTLP_ENDPOINT is the receiver's base URL (http://host:4318); OTEL_SERVICE_NAME
names the service.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import urllib.request
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def _attributes(attrs: Any) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in (attrs or {}).items()]


class OTLPJSONExporter(SpanExporter):
    """Sends spans to an OTLP/HTTP receiver, JSON-encoded."""

    def __init__(self, endpoint: str) -> None:
        self._url = endpoint.rstrip("/") + "/v1/traces"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        resource_spans = []
        for span in spans:
            ctx = span.context
            if ctx is None:
                continue
            out: dict[str, Any] = {
                "traceId": format(ctx.trace_id, "032x"),
                "spanId": format(ctx.span_id, "016x"),
                "name": span.name,
                "kind": span.kind.value + 1,  # OTLP counts from UNSPECIFIED = 0
                "startTimeUnixNano": str(span.start_time or 0),
                "endTimeUnixNano": str(span.end_time or 0),
                "attributes": _attributes(span.attributes),
                "status": {
                    "code": span.status.status_code.value,
                    "message": span.status.description or "",
                },
            }
            if span.parent is not None:
                out["parentSpanId"] = format(span.parent.span_id, "016x")
            scope = span.instrumentation_scope
            resource_spans.append(
                {
                    "resource": {"attributes": _attributes(span.resource.attributes)},
                    "scopeSpans": [
                        {
                            "scope": {
                                "name": scope.name if scope else "",
                                "version": (scope.version or "") if scope else "",
                            },
                            "spans": [out],
                        }
                    ],
                }
            )
        body = json.dumps({"resourceSpans": resource_spans}).encode()
        req = urllib.request.Request(
            self._url, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                resp.read()
        except OSError as e:
            print(f"example_otel: export failed: {e}", file=sys.stderr, flush=True)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def main() -> None:
    service, args = sys.argv[1], sys.argv[2:]
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    if endpoint:
        name = os.environ.get("OTEL_SERVICE_NAME", "example-python")
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPJSONExporter(endpoint)))
        trace.set_tracer_provider(provider)
    sys.argv = [service, *args]
    runpy.run_path(service, run_name="__main__")


if __name__ == "__main__":
    main()
