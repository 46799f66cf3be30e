"""Work that crosses tasks. A statement that answers several callers' point reads (automatic
batching) belongs to each: a span in each caller's trace, a count in each caller's unit of work,
every trace id in its log line, and one statement in the metrics. A transaction entered in one
task and left in another commits without an error."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from shared_db import tracing
from shared_db.client import Database
from shared_db.config import QueryLogSettings
from shared_db.observe import detect_n_plus_one
from tests.conftest import Stores
from tests.factories import make_user
from tests.observability.conftest import observed

Provided = tuple[TracerProvider, InMemorySpanExporter]
CALLERS = 4


def _parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


async def test_each_caller_s_trace_and_unit_hold_the_shared_statement(
        stores: Stores, provider: Provided, caplog: pytest.LogCaptureFixture) -> None:
    sdk, exporter = provider
    caplog.set_level(logging.DEBUG, logger="shared_db.query")
    settings = observed(stores.settings(), tracing=True, metrics=True)
    async with Database(settings, log=QueryLogSettings(log_format="json")) as db:
        tracing.enable(sdk)
        users = [await make_user(db, f"batched{n}@example.com") for n in range(CALLERS)]
        exporter.clear()
        caplog.clear()
        tracer = sdk.get_tracer("test")
        units = []

        async def request(n: int) -> None:
            with tracer.start_as_current_span(f"request{n}"), detect_n_plus_one() as counts:
                units.append(counts)
                assert (await db.users.get(users[n].id)) is not None

        await asyncio.gather(*(request(n) for n in range(CALLERS)))
        assert db.metrics is not None
        scraped = db.metrics.registry.get_sample_value(
            "shared_db_statement_duration_seconds_count",
            {"query": "users.get.many", "outcome": "ok"})
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    shared = [s for s in spans if s.name == "users.get.many"]
    assert len(shared) == CALLERS  # one in each caller's trace
    for span in shared:
        call = by_id[_parent_id(span)]  # type: ignore[index]
        assert call.name == "UserRepository.get"
        assert dict(span.attributes or {})["shared_db.batch.callers"] == CALLERS
    requests = {by_id[_parent_id(by_id[_parent_id(s)])].name for s in shared}  # type: ignore[index]
    assert requests == {f"request{n}" for n in range(CALLERS)}
    assert len({s.context.trace_id for s in shared}) == CALLERS
    assert [sum(c.values()) for c in units] == [1] * CALLERS
    (logged,) = [json.loads(r.getMessage()) for r in caplog.records
                 if r.name == "shared_db.query" and "users.get.many" in r.getMessage()]
    assert len(logged["trace_ids"]) == CALLERS
    assert set(logged["trace_ids"]) == {f"{s.context.trace_id:032x}" for s in shared}
    assert scraped == 1.0  # metrics count the statement that ran, once


async def test_callers_in_one_unit_count_the_shared_statement_once(traced: Database) -> None:
    users = [await make_user(traced, f"oneunit{n}@example.com") for n in range(CALLERS)]
    with detect_n_plus_one() as counts:
        await asyncio.gather(*(traced.users.get(u.id) for u in users))
    assert sum(counts.values()) == 1


async def test_a_transaction_closed_in_another_task_commits_quietly(
        traced: Database, provider: Provided, caplog: pytest.LogCaptureFixture) -> None:
    # An async fixture enters a transaction in its setup and leaves it in its teardown, each
    # in a task of its own: its unit of work and span were made current in the first one.
    _, exporter = provider
    exporter.clear()
    tx = traced.transaction()
    await asyncio.create_task(tx.__aenter__())
    user = await make_user(tx, "across@example.com")
    await asyncio.create_task(tx.__aexit__(None, None, None))
    assert await traced.users.get(user.id) is not None  # committed
    assert [s.name for s in exporter.get_finished_spans()].count("shared_db.transaction") == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_shared_statement_draws_no_span_in_a_dropped_caller_s_trace(
        traced: Database, provider: Provided) -> None:
    _, exporter = provider
    users = [await make_user(traced, f"mixed{n}@example.com") for n in range(CALLERS)]
    exporter.clear()
    parents = [SpanContext(n + 1, n + 1, is_remote=True, trace_flags=TraceFlags(
        TraceFlags.SAMPLED if n % 2 else TraceFlags.DEFAULT)) for n in range(CALLERS)]

    async def request(n: int) -> None:
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(parents[n])))
        try:
            assert (await traced.users.get(users[n].id)) is not None
        finally:
            context.detach(token)

    await asyncio.gather(*(request(n) for n in range(CALLERS)))
    shared = [s for s in exporter.get_finished_spans() if s.name == "users.get.many"]
    assert sorted(s.context.trace_id for s in shared) == [2, 4]  # the sampled requests only
