"""Read replicas: a real primary and a streaming replica made with ``pg_basebackup -R``.

Replay on the replica is paused to tell the two apart: a read served by the replica cannot see
a row written after the pause, a read on the primary (inside a transaction) can.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from shared_db import devserver
from shared_db.client import Database
from shared_db.config import PACKAGE_MIGRATIONS, load_settings
from shared_db.errors import ConfigError
from shared_db.ops import migrate
from shared_db.ops.scratch import create_database, drop_database
from shared_db.ops.targets import Target, resolve_targets
from shared_db.services import SERVICES
from shared_db.url import parse_database_url
from tests.factories import PASSWORD_HASH


@pytest.fixture(scope="module")
def primary_and_replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("replication")
    primary = devserver.start(root / "primary")
    migrate.deploy(resolve_targets(load_settings({"DATABASE_URL": primary}))[0],
                   PACKAGE_MIGRATIONS)
    replica = devserver.start_replica(primary, root / "replica")
    try:
        yield primary, replica
    finally:
        devserver.stop(root / "replica")
        devserver.stop(root / "primary")


def _caught_up(primary: str, replica: str) -> None:
    with psycopg.connect(primary, autocommit=True) as conn:
        # The insert position: with synchronous_commit off a commit may not be written yet.
        target = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
    with psycopg.connect(replica, autocommit=True) as conn:
        for _ in range(200):
            if conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                            (target,)).fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the replica did not catch up")


def _replay(replica: str, paused: bool) -> None:
    with psycopg.connect(replica, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


async def test_reads_go_to_the_replica_and_writes_to_the_primary(
        primary_and_replica: tuple[str, str]) -> None:
    primary, replica = primary_and_replica
    with psycopg.connect(replica) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    settings = load_settings({"DATABASE_URL": primary, "DATABASE_READ_URL": replica})
    async with Database(settings) as db:
        first = await db.users.create(email="seen@example.com", password_hash=PASSWORD_HASH,
                                      name="S", role="CUSTOMER")
        _caught_up(primary, replica)
        assert await db.users.get(first.id) is not None
        _replay(replica, paused=True)
        try:
            late = await db.users.create(email="late@example.com", password_hash=PASSWORD_HASH,
                                         name="L", role="CUSTOMER")
            # A write called on the Database needs the primary even without a transaction.
            payment = await db.payments.create(late.id, Decimal("3.00"), type="payment")
            assert await db.users.get(late.id) is None  # the paused replica
            assert await db.payments.get(payment.id) is None
            async with db.transaction() as tx:  # reads inside a transaction: the primary
                assert await tx.users.get(late.id) is not None
                assert await tx.payments.get(payment.id) is not None
        finally:
            _replay(replica, paused=False)
        _caught_up(primary, replica)
        assert await db.users.get(late.id) is not None
        eager = await db.users.eager(late.id)
        assert eager is not None and [p.id for p in eager.payments] == [payment.id]


def test_read_urls_follow_the_topology(tmp_path: Path) -> None:
    url = "postgresql://u@h/db"
    shared = load_settings({"DATABASE_URL": url, "DATABASE_READ_URL": url + "_ro"})
    assert set(shared.read_urls.values()) == {url + "_ro"} and len(shared.read_urls) == 4
    per = load_settings({"SHARED_DB_TOPOLOGY": "per-service", "PAYMENTS_READ_URL": url + "_ro",
                         **{f"{s}_DATABASE_URL": url for s in ("AUTH", "PAYMENTS", "ADMIN",
                                                                "PROFILE")}})
    assert dict(per.read_urls) == {"payments": url + "_ro"}
    with pytest.raises(ConfigError) as caught:
        load_settings({"DATABASE_URL": url, "DATABASE_READ_URL": "mysql://x/y"})
    assert caught.value.field == "DATABASE_READ_URL"


async def test_per_service_read_urls(primary_and_replica: tuple[str, str]) -> None:
    primary, replica = primary_and_replica
    server, replica_server = parse_database_url(primary), parse_database_url(replica)
    urls = {}
    for service in SERVICES:
        name = f"replicated_{service}"
        drop_database(server, name)
        urls[service] = create_database(server, name)
        migrate.deploy(Target(service, urls[service], (service,)), PACKAGE_MIGRATIONS)
    env = {"SHARED_DB_TOPOLOGY": "per-service",
           "PAYMENTS_READ_URL": replica_server.with_database("replicated_payments").libpq_url(),
           **{f"{s.upper()}_DATABASE_URL": c.libpq_url() for s, c in urls.items()}}
    async with Database(load_settings(env)) as db:
        user = await db.users.create(email="p@example.com", password_hash=PASSWORD_HASH, name="P",
                                     role="CUSTOMER")
        _caught_up(primary, replica)
        _replay(replica, paused=True)
        try:
            payment = await db.payments.create(user.id, Decimal("4.00"), type="payment")
            assert await db.payments.get(payment.id) is None  # payments reads: the replica
            assert await db.users.get(user.id) is not None  # auth has no replica: primary
            async with db.transaction() as tx:
                assert await tx.payments.get(payment.id) is not None
        finally:
            _replay(replica, paused=False)
        _caught_up(primary, replica)
        assert await db.payments.get(payment.id) is not None


async def test_auth_decisions_read_the_primary(primary_and_replica: tuple[str, str]) -> None:
    """A lagging replica must not keep a revoked token alive nor refuse a new account."""
    primary, replica = primary_and_replica
    settings = load_settings({"DATABASE_URL": primary, "DATABASE_READ_URL": replica})
    async with Database(settings) as db:
        user = await db.users.create(email="auth-fresh@example.com", password="first-pass-1",
                                     name="A", role="CUSTOMER")
        issued = await db.tokens.issue(user.id)
        _caught_up(primary, replica)
        _replay(replica, paused=True)
        try:
            assert await db.tokens.revoke(issued.token)
            assert await db.tokens.find(issued.token) is None
            newer = await db.users.create(email="auth-new@example.com", password="second-pass",
                                          name="N", role="CUSTOMER")
            assert await db.users.get(newer.id) is None  # ordinary reads: the paused replica
            assert await db.users.verify_password("auth-new@example.com", "second-pass") == newer
            fresh = await db.tokens.issue(newer.id)
            found = await db.tokens.find(fresh.token)
            assert found is not None and found.user_id == newer.id
        finally:
            _replay(replica, paused=False)
