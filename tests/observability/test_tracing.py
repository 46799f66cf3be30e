"""OpenTelemetry spans, read back from the SDK's in-memory exporter."""

from __future__ import annotations

import pytest
from opentelemetry import context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import Integer, bindparam, cast, select

from shared_db import tracing
from shared_db.client import Database
from shared_db.errors import DuplicateError, RetryExhaustedError, ValidationError
from shared_db.observe import QueryLog
from shared_db.profile.service import create_user_with_profile
from shared_db.sql import Query
from tests.conftest import Stores
from tests.factories import PASSWORD_HASH, make_user
from tests.test_client import _write_skew

Provided = tuple[TracerProvider, InMemorySpanExporter]
AS_NUMBER = Query.build("test.as_number", select(cast(bindparam("text"), Integer)))


def _children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None
            and s.parent.span_id == parent.context.span_id]  # type: ignore[union-attr]


def _named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_a_call_and_its_statements_are_children_of_the_callers_span(
        traced: Database, provider: Provided, stores: Stores) -> None:
    sdk, exporter = provider
    user = await make_user(traced, "traced@example.com")
    exporter.clear()
    with sdk.get_tracer("test").start_as_current_span("request") as request:
        assert await traced.users.get(user.id) is not None
    spans = exporter.get_finished_spans()
    (root,) = _named(spans, "request")
    assert root.context.span_id == request.get_span_context().span_id
    (call,) = _children(spans, root)
    assert call.name == "UserRepository.get" and call.status.status_code != StatusCode.ERROR
    (statement,) = _children(spans, call)
    assert statement.kind == SpanKind.CLIENT and statement.name == "users.get"
    attributes = dict(statement.attributes or {})
    where = conninfo_to_dict(stores.settings().connection(stores.client_url
                                                          or stores.url("auth")).libpq_url())
    assert attributes["db.system.name"] == "postgresql"
    assert attributes["db.namespace"] == f"{where['dbname']}.public"
    assert attributes["db.operation.name"] == "SELECT"
    assert attributes["db.query.summary"] == "users.get"
    assert str(attributes["db.query.text"]).startswith("SELECT users.id")
    assert str(attributes["db.query.text"]).endswith("\n/* shared_db:users.get */")
    assert attributes["server.address"] == where["host"]
    assert attributes["server.port"] == int(where.get("port", 5432))
    assert statement.start_time >= call.start_time  # type: ignore[operator]
    assert statement.end_time <= call.end_time  # type: ignore[operator]


@pytest.mark.parametrize("sampled", [True, False])
async def test_a_remote_parent_decides_by_its_sampled_flag(
        traced: Database, provider: Provided, sampled: bool) -> None:
    """A parent read from an incoming traceparent (never recording itself): its flag says
    whether the call is traced, as the SDK's parent-based sampler would decide."""
    _, exporter = provider
    user = await make_user(traced, "remote@example.com")
    exporter.clear()
    parent = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(
        TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT))
    token = context.attach(set_span_in_context(NonRecordingSpan(parent)))
    try:
        assert await traced.users.get(user.id) is not None
    finally:
        context.detach(token)
    spans = exporter.get_finished_spans()
    if not sampled:
        assert spans == ()
        return
    (call,) = _named(spans, "UserRepository.get")
    assert call.parent is not None and call.parent.span_id == 0x5678
    assert call.context.trace_id == 0x1234  # type: ignore[union-attr]
    assert [s.name for s in _children(spans, call)] == ["users.get"]


async def test_errors_mark_the_call_and_the_statement(traced: Database,
                                                      provider: Provided) -> None:
    _, exporter = provider
    await make_user(traced, "taken@example.com")
    exporter.clear()
    with pytest.raises(DuplicateError):
        await make_user(traced, "taken@example.com")
    spans = exporter.get_finished_spans()
    (call,) = _named(spans, "UserRepository.create")
    assert call.status.status_code == StatusCode.ERROR
    assert dict(call.attributes or {})["error.type"] == "DuplicateError"
    exporter.clear()
    with pytest.raises(ValidationError):
        async with traced.executor("auth") as ex:
            await ex.scalar(AS_NUMBER, {"text": "not a number"})
    (statement,) = exporter.get_finished_spans()
    assert statement.name == "test.as_number" and statement.status.status_code == StatusCode.ERROR
    attributes = dict(statement.attributes or {})
    assert attributes["error.type"] == "22P02" == attributes["db.response.status_code"]
    assert "not a number" not in str(attributes["db.query.text"])


async def test_transaction_and_two_phase_commit_spans(traced: Database, provider: Provided,
                                                      stores: Stores) -> None:
    _, exporter = provider
    await create_user_with_profile(traced, email="both@example.com",
                                   password_hash=PASSWORD_HASH, name="B", role="CUSTOMER",
                                   profile={"preferences": {}})
    spans = exporter.get_finished_spans()
    (call,) = _named(spans, "create_user_with_profile")
    transactions = _named(spans, "shared_db.transaction")
    committed = _named(spans, "shared_db.two_phase_commit")
    if stores.topology == "per-service":
        (tx,) = transactions
        assert tx.parent.span_id == call.context.span_id  # type: ignore[union-attr]
        (two_phase,) = committed
        assert two_phase.parent.span_id == tx.context.span_id  # type: ignore[union-attr]
        assert dict(two_phase.attributes or {})["shared_db.two_phase.parts"] == 3
        names = {s.name for s in _children(spans, two_phase)}
        assert names == {"twophase.prepare", "twophase.commit"}
        # Two transactions on the same connections: each span names its own transaction.
        exporter.clear()
        await create_user_with_profile(traced, email="both2@example.com",
                                       password_hash=PASSWORD_HASH, name="B", role="CUSTOMER",
                                       profile={"preferences": {}})
        again = exporter.get_finished_spans()
        texts = {str(dict(s.attributes or {})["db.query.text"]) for s in again + spans
                 if s.name == "twophase.commit"}
        assert len(texts) == 6  # three parts each, every one with its transaction's id
    else:  # one statement, no transaction: nothing to commit in two phases
        assert not committed


async def test_each_attempt_of_a_retried_transaction_is_a_span(traced: Database,
                                                               provider: Provided) -> None:
    _, exporter = provider
    results = await _write_skew(traced, retries=0)
    assert any(isinstance(r, RetryExhaustedError) for r in results)
    attempts = _named(exporter.get_finished_spans(), "shared_db.attempt")
    assert len(attempts) == 2
    failed = [a for a in attempts if a.status.status_code == StatusCode.ERROR]
    assert [dict(a.attributes or {})["error.type"] for a in failed] == ["TransientConflictError"]
    (run,) = [s for s in exporter.get_finished_spans() if s.name == "Database.run"
              and s.status.status_code == StatusCode.ERROR]
    assert failed[0].parent.span_id == run.context.span_id  # type: ignore[union-attr]


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValidationError, match="provider"):
        tracing.enable("not a provider")
    with pytest.raises(ValidationError, match="callback"):
        QueryLog().on_n_plus_one(42)  # type: ignore[arg-type]
    assert tracing.state.tracer is None
