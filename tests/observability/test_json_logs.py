"""SHARED_DB_LOG_FORMAT=json: one JSON object per logged event, values still hidden."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared_db import tracing
from shared_db.client import Database
from shared_db.config import QueryLogSettings, load_settings
from shared_db.errors import ConfigError, ValidationError
from tests.conftest import DbFixture
from tests.factories import make_user
from tests.observability.test_tracing import AS_NUMBER

Provided = tuple[TracerProvider, InMemorySpanExporter]


def _events(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "shared_db.query"]


def test_the_setting() -> None:
    assert load_settings({"SHARED_DB_LOG_FORMAT": "json"}).log.log_format == "json"
    assert load_settings({}).log.log_format == "text"
    with pytest.raises(ConfigError, match="SHARED_DB_LOG_FORMAT"):
        load_settings({"SHARED_DB_LOG_FORMAT": "xml"})
    wanted = load_settings({"SHARED_DB_TRACING": "true", "SHARED_DB_METRICS": "1"}).telemetry
    assert wanted.tracing and wanted.metrics and not wanted.trace_context
    with pytest.raises(ConfigError, match="SHARED_DB_TRACE_CONTEXT"):
        load_settings({"SHARED_DB_TRACE_CONTEXT": "maybe"})


async def test_one_object_per_event_with_the_trace_id(migrated_db: DbFixture,
                                                      provider: Provided,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="shared_db.query")
    async with Database(migrated_db.settings(), log=QueryLogSettings(log_format="json")) as db:
        await make_user(db, "json@example.com")
        with pytest.raises(ValidationError):
            async with db.executor("auth") as ex:
                await ex.scalar(AS_NUMBER, {"text": "secret-value"})
        tracing.enable(provider[0])
        with provider[0].get_tracer("test").start_as_current_span("request") as span:
            await db.users.get_by_email("json@example.com")
    events = _events(caplog)
    assert {e["outcome"] for e in events} == {"ok", "error"}
    (failed,) = [e for e in events if e["outcome"] == "error"]
    assert failed["sqlstate"] == "22P02" and "secret-value" not in caplog.text
    assert all(e["event"] == "query" and isinstance(e["duration_ms"], float) for e in events)
    (read,) = [e for e in events if e["query"] == "users.by_email"]
    assert read["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert all(e["trace_id"] is None for e in events if e is not read)
    assert "json@example.com" not in caplog.text


async def test_params_only_when_asked(migrated_db: DbFixture,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="shared_db.query")
    log = QueryLogSettings(log_format="json", log_params=True, slow_ms=1.0)
    async with Database(migrated_db.settings(), log=log) as db:
        for _ in range(3):
            await db.users.get_by_email("shown@example.com")
    slow = [e for e in _events(caplog) if e["outcome"] == "slow"]
    assert all(e["params"] == {"email": "shown@example.com"} for e in slow)
