"""Clients with tracing or metrics on, over the topologies of the suite."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared_db import tracing
from shared_db.client import Database
from shared_db.config import QueryLogSettings, Settings, TelemetrySettings
from tests.conftest import Stores


def observed(settings: Settings, **wanted: bool) -> Settings:
    return dataclasses.replace(settings, telemetry=TelemetrySettings(**wanted))


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """An SDK tracer provider exporting into memory, the one shared-db traces to."""
    exporter = InMemorySpanExporter()
    sdk = TracerProvider()
    sdk.add_span_processor(SimpleSpanProcessor(exporter))
    yield sdk, exporter
    tracing.disable()


@pytest.fixture
async def traced(stores: Stores, provider: tuple[TracerProvider, InMemorySpanExporter],
                 ) -> AsyncIterator[Database]:
    async with Database(observed(stores.settings(), tracing=True)) as database:
        tracing.enable(provider[0])
        yield database


@pytest.fixture
async def measured(stores: Stores) -> AsyncIterator[Database]:
    log = QueryLogSettings(slow_ms=1.0, n_plus_one=3)
    async with Database(observed(stores.settings(), metrics=True), log=log) as database:
        yield database
