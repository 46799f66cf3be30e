"""``shared-db metrics``: a client's Prometheus metrics served over HTTP, for a quick look.

Besides the client's own metrics (its pools, for a start), it reports what the servers know
from ``pg_stat_statements``, summed by the query name each statement ends with: calls and
execution time per method, refreshed every ``REFRESH`` seconds. A service mounts
``Database.metrics.registry`` itself; this command is for looking, not for production.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator

import psycopg
from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from shared_db.client import Database
from shared_db.config import Settings
from shared_db.errors import ValidationError
from shared_db.services import SERVICES

REFRESH = 10.0
BY_METHOD = r"""
SELECT current_database(), substring(query FROM '/\* shared_db:(\S+) \*/'), sum(calls)::bigint,
       sum(total_exec_time) / 1000
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query LIKE '%/* shared\_db:%'
GROUP BY 1, 2
"""
Row = tuple[str, str, int, float]


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
        raise ValidationError("port", f"must be a whole number from 0 to 65535, got {port!r}")
    wanted = dataclasses.replace(settings.telemetry, metrics=True)
    async with Database(dataclasses.replace(settings, telemetry=wanted)) as db:
        assert db.metrics is not None
        server_side = _ServerStatements()
        db.metrics.registry.register(server_side)
        try:
            httpd, thread = start_http_server(port, addr=host, registry=db.metrics.registry)
        except OSError as exc:
            raise ValidationError("port", f"cannot listen on {host}:{port}: {exc}") from exc
        try:
            server_side.rows = await _read(db)
            announce(f"http://{host}:{httpd.server_address[1]}/metrics")
            while True:
                await asyncio.sleep(REFRESH)
                server_side.rows = await _read(db)
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(5)
