"""``shared-db metrics``: a client's Prometheus metrics served over HTTP, for a quick look.

Besides the client's own metrics (its pools, for a start), it reports what the servers know
from ``pg_stat_statements``, summed by the query name each statement ends with: calls and
execution time per method, refreshed every ``REFRESH`` seconds. A service mounts
``Database.metrics.registry`` itself; this command is for looking, not for production.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg
from prometheus_client import make_wsgi_app
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from shared_db.client import Database
from shared_db.config import Settings
from shared_db.errors import ValidationError
from shared_db.services import SERVICES
from shared_db.validation import shown as shown_value

REFRESH = 10.0
# At most 200 methods, by execution time: any client can end a statement with a comment like
# ours, and each name would be a series. Matched as monitoring.TOP_METHODS matches them.
BY_METHOD = r"""
SELECT current_database(), substring(query FROM '/\* shared_db:(\S+) \*/'), sum(calls)::bigint,
       sum(total_exec_time) / 1000
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND substring(query FROM '/\* shared_db:(\S+) \*/') IS NOT NULL
GROUP BY 1, 2
ORDER BY 4 DESC
LIMIT 200
"""
Row = tuple[str, str, int, float]
PATH = "/metrics"
NOT_FOUND = b"Not found: the metrics are at /metrics\n"


class _ServerStatements(Collector):
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily("shared_db_server_statement_calls",
                                    "pg_stat_statements calls by method",
                                    labels=["database", "method"])
        seconds = CounterMetricFamily("shared_db_server_statement_seconds",
                                      "pg_stat_statements execution time by method",
                                      labels=["database", "method"])
        for database, method, count, total in self.rows:
            calls.add_metric([database, method], count)
            seconds.add_metric([database, method], total)
        yield calls
        yield seconds


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress never holds up the end


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No line on stderr per request."""


def _only_metrics(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``app`` at ``/metrics`` only (prometheus_client answers any path); 404 elsewhere."""
    def routed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH:
            return app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                         ("Content-Length", str(len(NOT_FOUND)))])
        return [NOT_FOUND]
    return routed


def _listen(host: str, port: int, registry: CollectorRegistry,
            ) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``registry`` at ``http://host:port/metrics`` from a daemon thread."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                  flags=socket.AI_PASSIVE)[0]

    class Server(_Server):
        address_family = family  # an IPv6 address needs an IPv6 socket

    httpd = make_server(str(address[0]), port, _only_metrics(make_wsgi_app(registry)), Server,
                        handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, name="shared-db metrics",
                              daemon=True)
    thread.start()
    return httpd, thread


async def _read(db: Database) -> list[Row]:
    rows: list[Row] = []
    for pool in {id(p): p for p in map(db.pool, SERVICES)}.values():
        try:
            async with pool.connection() as conn:
                rows += await (await conn.execute(BY_METHOD)).fetchall()
        except psycopg.Error:
            continue  # pg_stat_statements not installed there: its pools still show
    return rows


async def serve(settings: Settings, host: str, port: int,
                announce: Callable[[str], None]) -> None:
    """Serve until cancelled; ``announce`` is told the URL once it answers."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValidationError("port", "must be a whole number from 0 to 65535, got "
                              f"{shown_value(port)}")
    wanted = dataclasses.replace(settings.telemetry, metrics=True)
    async with Database(dataclasses.replace(settings, telemetry=wanted)) as db:
        assert db.metrics is not None
        shown = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
        server_side = _ServerStatements()
        db.metrics.registry.register(server_side)
        try:
            httpd, thread = _listen(host, port, db.metrics.registry)
        except socket.gaierror as exc:
            raise ValidationError("host", f"cannot listen on {host!r}: {exc.strerror}") from exc
        except OSError as exc:
            # An address of no interface of this machine is the host's fault, not the port's.
            wrong = "host" if exc.errno == errno.EADDRNOTAVAIL else "port"
            raise ValidationError(wrong, f"cannot listen on {shown}:{port}: {exc}") from exc
        try:
            server_side.rows = await _read(db)
            announce(f"http://{shown}:{httpd.server_address[1]}{PATH}")
            while True:
                await asyncio.sleep(REFRESH)
                server_side.rows = await _read(db)
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(5)
