"""At most once under faults, exactly once with a key.

* A commit whose reply is lost (the backend is terminated while the commit waits for a
  synchronous standby that never comes: it is durable locally, but the client never hears so)
  is ``OutcomeUnknownError``, is never sent again, and a repeat with the same key returns the
  one row.
* A write blocked on a lock whose backend is terminated: a typed error, no second send.
* An idle pool across a restart or a crash: the very next calls all succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import psycopg
import pytest

from shared_db.client import Database
from shared_db.config import load_settings
from shared_db.errors import DatabaseUnavailableError, OutcomeUnknownError
from shared_db.profile.service import create_user_with_profile
from tests.conftest import DbFixture
from tests.factories import PASSWORD_HASH, make_user
from tests.faults import (
    Server,
    commits_unanswered,
    migrated_database,
    restartable,
    terminate,
)

__all__ = ["restartable"]  # the fixture, imported for this module's tests

@pytest.fixture
async def synced(migrated_db: DbFixture) -> AsyncIterator[Database]:
    """A client whose commits wait for synchronous standbys (the embedded server's default
    is ``synchronous_commit=off``)."""
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{migrated_db.connection.database}" '
                     "SET synchronous_commit = on")
    async with Database(migrated_db.settings()) as db:
        yield db


def _payments(db: DbFixture) -> list[tuple[object, ...]]:
    with psycopg.connect(db.url) as conn:
        return conn.execute("SELECT id, amount FROM payments").fetchall()


async def _unanswered(db: DbFixture, call: object) -> BaseException:
    """Run ``call`` while commits go unanswered, terminate it at its commit, return its error."""
    with commits_unanswered(db.url):
        task = asyncio.ensure_future(call)  # type: ignore[arg-type]
        assert await asyncio.to_thread(terminate, db.url, "SyncRep") == 1
        with pytest.raises(DatabaseUnavailableError) as caught:
            await asyncio.wait_for(task, 20)
    return caught.value


async def test_a_lost_commit_reply_is_outcome_unknown_and_never_resent(
        migrated_db: DbFixture, synced: Database) -> None:
    user = await make_user(synced, "lost@example.com", name="L")
    error = await _unanswered(migrated_db, synced.payments.create(
        user.id, Decimal("10.00"), type="payment"))
    assert isinstance(error, OutcomeUnknownError)
    assert len(_payments(migrated_db)) == 1  # committed once, and not sent a second time

    # The user, its audit row and its profile are one statement here, in autocommit.
    error = await _unanswered(migrated_db, create_user_with_profile(
        synced, email="whole@example.com", name="W", role="CUSTOMER",
        password_hash=PASSWORD_HASH))
    assert isinstance(error, OutcomeUnknownError)
    with psycopg.connect(migrated_db.url) as conn:
        assert conn.execute(
            "SELECT count(*), count(p.id) FROM users u LEFT JOIN user_profiles p "
            "ON p.user_id = u.id WHERE u.email = 'whole@example.com'").fetchone() == (1, 1)

    async def transfer() -> None:
        async with synced.transaction() as tx:
            await tx.config.set("limits.daily", 500)
    error = await _unanswered(migrated_db, transfer())
    assert isinstance(error, OutcomeUnknownError)
    assert await synced.config.value("limits.daily") == 500


async def test_the_retry_with_the_same_key_returns_the_one_row(
        migrated_db: DbFixture, synced: Database) -> None:
    user = await make_user(synced, "key@example.com", name="K")

    def create() -> object:
        return synced.payments.create(user.id, Decimal("25.00"), type="payment",
                                      idempotency_key="checkout-1")
    error = await _unanswered(migrated_db, create())
    assert isinstance(error, OutcomeUnknownError)
    (stored,) = _payments(migrated_db)
    again = await create()
    assert (again.id, again.amount) == stored  # type: ignore[attr-defined]
    assert len(_payments(migrated_db)) == 1

    def register() -> object:
        return synced.users.create(email="new@example.com", password="password1", name="N",
                                   role="VENDOR", idempotency_key="signup-9")
    error = await _unanswered(migrated_db, register())
    assert isinstance(error, OutcomeUnknownError)
    created = await register()
    assert (await synced.users.get_by_email("new@example.com")) == created


async def test_a_write_blocked_on_a_lock_whose_backend_dies_is_not_resent(
        migrated_db: DbFixture) -> None:
    async with Database(migrated_db.settings()) as db:
        user = await make_user(db, "blocked@example.com", name="B")
        with psycopg.connect(migrated_db.url) as holder:
            holder.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user.id,))
            # An autocommit write: it may have run, so its outcome is unknown.
            task = asyncio.ensure_future(db.payments.create(user.id, Decimal("1.00"),
                                                            type="payment"))
            assert await asyncio.to_thread(terminate, migrated_db.url, "transactionid") == 1
            with pytest.raises(OutcomeUnknownError):
                await asyncio.wait_for(task, 20)
            # A write inside a transaction whose COMMIT was never sent: plainly not done.
            task = asyncio.ensure_future(db.users.set_role(user.id, "ADMIN"))
            assert await asyncio.to_thread(terminate, migrated_db.url, "transactionid") == 1
            with pytest.raises(DatabaseUnavailableError) as caught:
                await asyncio.wait_for(task, 20)
            assert type(caught.value) is DatabaseUnavailableError
            holder.rollback()
        await asyncio.sleep(0.3)  # a second send, had there been one, would land now
        assert _payments(migrated_db) == []
        assert (await db.users.get(user.id)).role == "CUSTOMER"  # type: ignore[union-attr]


async def _warm(db: Database, size: int) -> None:
    # Hold `size` connections at once, so the pool really has that many idle afterwards.
    async def hold() -> None:
        async with db.transaction() as tx:
            await tx.config.get("warm")
            await asyncio.sleep(0.2)
    await asyncio.gather(*(hold() for _ in range(size)))


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_an_idle_pool_serves_the_very_next_calls_after_a_restart(
        restartable: Server, mode: str) -> None:
    url = migrated_database(restartable)
    settings = load_settings({"DATABASE_URL": url + "?connection_limit=8"})
    async with Database(settings) as db:
        user = await make_user(db, "idle@example.com", name="I")
        await _warm(db, 8)
        assert db.pool("auth").get_stats()["pool_available"] == 8
        await asyncio.to_thread(restartable.restart, mode)
        calls = [
            lambda: db.users.get(user.id),
            lambda: db.payments.create(user.id, Decimal("2.00"), type="payment"),
            lambda: db.users.get_by_email("idle@example.com"),
            lambda: db.config.set("after", mode),
            lambda: db.payments.create(user.id, Decimal("3.00"), type="payment",
                                       idempotency_key=f"after-{mode}"),
            lambda: db.payments.list_page(user.id),
            lambda: db.users.set_role(user.id, "VENDOR"),
            lambda: db.audit.record("idle.checked", resource_type="test"),
        ]
        for call in calls:  # each would fail on a dead connection; none may
            await call()
        assert len((await db.payments.list_page(user.id)).items) == 2


async def test_connections_the_server_ended_for_idleness_are_replaced(
        migrated_db: DbFixture) -> None:
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{migrated_db.connection.database}" '
                     "SET idle_session_timeout = '300ms'")
    async with Database(migrated_db.settings()) as db:
        await _warm(db, 4)
        await asyncio.sleep(0.8)  # every idle session is ended by the server
        user = await make_user(db, "idle2@example.com", name="I")
        assert await db.users.get(user.id) == user


async def test_a_whole_pool_ended_for_idleness_serves_an_autocommit_write(
        migrated_db: DbFixture) -> None:
    # More dead idle sessions than checkout looks at one by one: the write, sent once on its
    # own connection, must still go to a live one (a dead one would make it OutcomeUnknown).
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{migrated_db.connection.database}" '
                     "SET idle_session_timeout = '300ms'")
    settings = load_settings({"DATABASE_URL": migrated_db.url + "?connection_limit=8"})
    async with Database(settings) as db:
        await _warm(db, 8)
        assert db.pool("auth").get_stats()["pool_available"] == 8
        await asyncio.sleep(0.8)
        await db.audit.record("idle.whole_pool", resource_type="test")
    with psycopg.connect(migrated_db.url) as conn:
        assert conn.execute("SELECT count(*) FROM audit_logs WHERE action = 'idle.whole_pool'"
                            ).fetchone() == (1,)
