"""Every statement names its query in a comment; stats sum them by that name."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import func, select

from shared_db.client import Database
from shared_db.ops import monitoring
from shared_db.sql import Query
from tests.conftest import DbFixture
from tests.factories import make_user
from tests.observability.conftest import observed

CURRENT = Query.build("test.current_query", select(func.current_query()))
Provided = tuple[TracerProvider, InMemorySpanExporter]


def _statements_available(db: DbFixture) -> bool:
    with psycopg.connect(db.url) as conn:
        row = conn.execute("SHOW shared_preload_libraries").fetchone()
    return row is not None and "pg_stat_statements" in row[0]


async def test_the_server_sees_the_name_and_stats_sum_by_it(migrated_db: DbFixture) -> None:
    async with Database(migrated_db.settings()) as db:
        async with db.executor("auth") as ex:
            assert await ex.scalar(CURRENT, {}) == "SELECT current_query() AS current_query_1" \
                "\n/* shared_db:test.current_query */"
        user = await make_user(db, "named@example.com")
        for _ in range(5):
            await db.users.get(user.id)
    if not _statements_available(migrated_db):
        pytest.skip("pg_stat_statements is not preloaded on this server")
    stats = monitoring.collect(migrated_db.target(), top=100)
    methods = {m.method: m for m in stats.top_methods}
    assert methods["users.get"].calls >= 5
    assert methods["users.get"].total_ms >= methods["users.get"].mean_ms > 0
    assert "users.create" in methods
    shown = subprocess.run([sys.executable, "-m", "shared_db", "stats", "--json",
                            "--top", "100"], env=migrated_db.env(), capture_output=True,
                           text=True, check=True, timeout=60)
    (target,) = json.loads(shown.stdout)["targets"]
    assert "users.get" in {m["method"] for m in target["top_methods"]}


async def test_trace_context_in_the_comment_when_asked(migrated_db: DbFixture,
                                                       provider: Provided) -> None:
    settings = observed(migrated_db.settings(), tracing=True, trace_context=True)
    async with Database(settings) as db:
        from shared_db import tracing

        tracing.enable(provider[0])
        async with db.executor("auth") as ex:
            outside = await ex.scalar(CURRENT, {})
        with provider[0].get_tracer("test").start_as_current_span("request") as span:
            async with db.executor("auth") as ex:
                inside = await ex.scalar(CURRENT, {})
            context = span.get_span_context()
    assert outside == CURRENT.sql  # no trace, nothing appended
    assert inside == (f"{CURRENT.sql} /*traceparent='00-{context.trace_id:032x}-"
                      f"{context.span_id:016x}-{int(context.trace_flags):02x}'*/")
