"""Prometheus metrics, scraped over HTTP and read with the Prometheus text parser."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import bindparam, func, select

from shared_db.client import Database
from shared_db.errors import DuplicateError, PoolTimeoutError, RetryExhaustedError
from shared_db.metrics import Metrics
from shared_db.observe import QueryLog, detect_n_plus_one
from shared_db.profile.service import create_user_with_profile
from shared_db.services import SERVICES
from shared_db.sql import Query, QueryHooks
from tests.conftest import DbFixture, Stores
from tests.factories import PASSWORD_HASH, make_user
from tests.observability.conftest import observed
from tests.test_client import _write_skew

SLEEP = Query.build("test.sleep", select(func.pg_sleep(bindparam("seconds"))))


def scrape(registry: CollectorRegistry) -> list[Sample]:
    """Every sample, as a Prometheus server would read them from a real HTTP endpoint."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name
             and all(s.labels.get(k) == v for k, v in labels.items())]
    assert found, (name, labels)
    return sum(found)


async def test_statements_errors_pools_and_warnings(measured: Database, stores: Stores) -> None:
    assert measured.metrics is not None
    user = await make_user(measured, "counted@example.com")
    with pytest.raises(DuplicateError):
        await make_user(measured, "counted@example.com")
    async with measured.executor("auth") as ex:
        await ex.scalar(SLEEP, {"seconds": 0.005})
    with detect_n_plus_one():
        for _ in range(3):
            await measured.users.get(user.id)
    await create_user_with_profile(measured, email="two@example.com",
                                   password_hash=PASSWORD_HASH, name="T", role="CUSTOMER",
                                   profile={"preferences": {}})
    samples = scrape(measured.metrics.registry)
    duration = "shared_db_statement_duration_seconds"
    assert value(samples, f"{duration}_count", query="users.get", outcome="ok") >= 3
    assert value(samples, f"{duration}_bucket", query="test.sleep", outcome="ok", le="0.001") == 0
    assert value(samples, f"{duration}_count", query="test.sleep", outcome="ok") == 1
    assert value(samples, "shared_db_slow_queries_total", query="test.sleep") == 1
    assert value(samples, "shared_db_n_plus_one_warnings_total", query="users.get") == 1
    database = stores.settings().connection(stores.client_url or stores.url("auth")).database
    if stores.topology == "per-service":
        # the first make_user (users in auth, its audit row in admin) and the pair
        assert value(samples, "shared_db_two_phase_commits_total", outcome="committed") == 2
        database = stores.settings().connection(stores.url("auth"), "x").database
    where = stores.settings().connection(stores.client_url or stores.url("auth"))
    # Per service, one database name on two servers is two series.
    server = f"{where.url.host}:{where.url.port or 5432}"
    for gauge in ("size", "in_use", "idle", "waiting", "max", "timeouts_total"):
        assert value(samples, f"shared_db_pool_{gauge}", database=database,
                     role="primary") >= 0
        assert {s.labels["server"] for s in samples if s.name == f"shared_db_pool_{gauge}"} \
            == {server}
    assert value(samples, "shared_db_pool_max", role="primary") >= len(
        {stores.url(s) for s in SERVICES})
    assert value(samples, "shared_db_pool_checkout_wait_seconds_count", database=database) >= 3
    assert value(samples, "shared_db_two_phase_in_doubt_parts_total") == 0


async def test_duplicate_is_refused_not_an_error_and_errors_count_by_type(
        measured: Database) -> None:
    assert measured.metrics is not None
    async with measured.executor("admin") as ex:
        with pytest.raises(DuplicateError):
            for _ in range(2):
                await ex.execute(Query("test.insert_twice", "INSERT INTO system_config "
                                       "(key, value) VALUES ('k', '1')"), {})
    samples = scrape(measured.metrics.registry)
    duration = "shared_db_statement_duration_seconds_count"
    assert value(samples, duration, query="test.insert_twice", outcome="refused") == 1
    assert value(samples, "shared_db_statement_errors_total", query="test.insert_twice",
                 type="UniqueViolation") == 1


async def test_retries_by_cause(measured: Database) -> None:
    assert measured.metrics is not None
    results = await _write_skew(measured, retries=1)
    assert not any(isinstance(r, RetryExhaustedError) for r in results)
    samples = scrape(measured.metrics.registry)
    assert value(samples, "shared_db_transaction_retries_total",
                 cause="SerializationFailure") == 1


@pytest.mark.shared_only
async def test_replica_lag_and_no_pool_left_after_close(migrated_db: DbFixture) -> None:
    settings = dataclasses.replace(migrated_db.settings(),
                                   read_urls=dict.fromkeys(SERVICES, migrated_db.url))
    async with Database(observed(settings, metrics=True)) as db:
        assert db.metrics is not None
        registry = db.metrics.registry
        for _ in range(50):  # the first sample is taken as the pools open
            samples = scrape(registry)
            if any(s.name == "shared_db_replica_lag_seconds" for s in samples):
                break
            await asyncio.sleep(0.05)
        assert value(samples, "shared_db_replica_lag_seconds",
                     database=migrated_db.connection.database) == 0
        assert value(samples, "shared_db_pool_size", role="replica") >= 1
    assert not [s for s in scrape(registry) if s.name.startswith("shared_db_pool_size")]


async def test_checkouts_that_time_out_are_waits_and_stop_waiting(
        migrated_db: DbFixture) -> None:
    url = f"{migrated_db.url}?connection_limit=2&pool_timeout=0.3"
    settings = dataclasses.replace(migrated_db.settings(), database_url=url)
    async with Database(observed(settings, metrics=True)) as db:
        assert db.metrics is not None
        release = asyncio.Event()

        async def hold() -> None:
            async with db.executor("auth"):
                await release.wait()

        async def checkout() -> None:
            async with db.executor("auth"):
                pass

        holders = [asyncio.create_task(hold()) for _ in range(2)]
        await asyncio.sleep(0.2)
        failed = await asyncio.gather(*(checkout() for _ in range(3)), return_exceptions=True)
        assert all(isinstance(f, PoolTimeoutError) for f in failed), failed
        samples = scrape(db.metrics.registry)
        release.set()
        await asyncio.gather(*holders)
    wait = "shared_db_pool_checkout_wait_seconds"
    assert value(samples, f"{wait}_count", role="primary") >= 5  # the 2 holders and 3 timeouts
    assert value(samples, f"{wait}_sum", role="primary") >= 0.9
    assert value(samples, "shared_db_pool_waiting", role="primary") == 0  # they gave up


def test_the_dashboard_and_alerts_name_only_real_metrics() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "observability.md").read_text()
    dashboard = json.loads(doc.split("```json\n")[-1].split("\n```")[0])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    alerts = doc.split("```yaml\n")[1].split("\n```")[0]
    metrics = Metrics(QueryHooks(), QueryLog())
    names = {s.name for f in metrics.registry.collect() for s in f.samples} | {
        f.name for f in metrics.registry.collect()}
    names |= {f"{f.name}_{suffix}" for f in metrics.registry.collect()
              for suffix in ("bucket", "count", "sum", "total")}
    used = set(re.findall(r"shared_db_\w+", " ".join([*exprs, alerts])))
    assert used and used <= names, used - names
