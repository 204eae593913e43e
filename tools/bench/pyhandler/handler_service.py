"""The bench handler service on the Python SDK: what handlersvc.go is on the Go SDK, for W10.

    python handler_service.py --listen 127.0.0.1:7403 --records 127.0.0.1:7404

It serves the handler "noop", which notes the instant it started (``time.time_ns()``, its first
statement) with the execution it ran, and answers over HTTP on --records:

- ``GET /count?…``: how many notes the query selects, then a newline;
- ``GET /records?…``: those notes, a JSON array of ``{"id", "job", "attempt", "epoch",
  "nominal", "start"}`` (times in Unix nanoseconds; the nominal time to the microsecond, as
  the SDK gives it).

The query selects by job-name prefix (``prefix``), by nominal time (``from`` and ``to``,
inclusive) and by start time (``start_from`` inclusive, ``start_to`` exclusive), all in Unix
nanoseconds, absent or 0 for unbounded: the protocol the benchmark reads the Go service with.
It stops gracefully on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import tock

NOOP = "noop"
"""The name of the handler the benchmark's jobs run."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Record:
    """One run of the noop handler."""

    id: str
    job: str
    attempt: int
    epoch: int
    nominal: int
    start: int


@dataclass(frozen=True)
class Bounds:
    """What a query selects; 0 is unbounded."""

    prefix: str = ""
    nominal_from: int = 0
    nominal_to: int = 0
    start_from: int = 0
    start_to: int = 0

    @classmethod
    def parse(cls, query: str) -> Bounds:
        q = parse_qs(query)

        def n(key: str) -> int:
            try:
                return int(q.get(key, ["0"])[0])
            except ValueError:
                return 0

        return cls(
            prefix=q.get("prefix", [""])[0],
            nominal_from=n("from"),
            nominal_to=n("to"),
            start_from=n("start_from"),
            start_to=n("start_to"),
        )

    def match(self, r: Record) -> bool:
        return (
            r.job.startswith(self.prefix)
            and (self.nominal_from == 0 or r.nominal >= self.nominal_from)
            and (self.nominal_to == 0 or r.nominal <= self.nominal_to)
            and (self.start_from == 0 or r.start >= self.start_from)
            and (self.start_to == 0 or r.start < self.start_to)
        )


class RecordBook:
    """The notes of the handler; added to on the event loop, read from HTTP threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # protects _records
        self._records: list[Record] = []

    def add(self, r: Record) -> None:
        with self._lock:
            self._records.append(r)

    def match(self, b: Bounds) -> list[Record]:
        with self._lock:
            records = list(self._records)
        return [r for r in records if b.match(r)]


def _unix_ns(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1) * 1000


def make_noop(book: RecordBook) -> Any:
    """Returns the noop handler, which notes its runs in book."""

    @tock.handler(NOOP)
    async def noop(ctx: tock.ExecutionContext, payload: bytes) -> None:
        start = time.time_ns()
        book.add(
            Record(
                id=ctx.execution_id,
                job=ctx.job,
                attempt=ctx.attempt,
                epoch=ctx.lease_epoch,
                nominal=_unix_ns(ctx.nominal_time),
                start=start,
            )
        )

    return noop


def records_server(address: str, book: RecordBook) -> ThreadingHTTPServer:
    """Returns an HTTP server on address ("host:port") that answers /count and /records."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path not in ("/count", "/records"):
                self.send_error(404)
                return
            selected = book.match(Bounds.parse(url.query))
            if url.path == "/count":
                body, ctype = f"{len(selected)}\n".encode(), "text/plain; charset=utf-8"
            else:
                body, ctype = json.dumps([asdict(r) for r in selected]).encode(), "application/json"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per poll would drown the log

    host, _, port = address.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    return server


async def serve(listen: str, records: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    book = RecordBook()
    http = records_server(records, book)
    thread = threading.Thread(target=http.serve_forever, name="records", daemon=True)
    thread.start()
    try:
        async with tock.Worker(handlers=[make_noop(book)], listen=listen, shutdown_timeout=5):
            await stop.wait()
    finally:
        http.shutdown()
        http.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serves the bench's noop handler and its notes.")
    parser.add_argument("--listen", required=True, help="host:port the agent calls the handler on")
    parser.add_argument("--records", required=True, help="host:port of the HTTP records endpoint")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(args.listen, args.records))


if __name__ == "__main__":
    main()
