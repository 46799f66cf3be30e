"""A transaction is used only inside its block: before it and after it, every use is refused.

The probe that found it: a ``tx.users.create`` after ``async with db.transaction() as tx: pass``
returned a user whose row sat on a connection left ``idle in transaction``, invisible, holding
its locks, and rolled back when the client closed. After a block that had run a statement, the
late write ran on a connection already back in the pool, and committed. Now each such use is
``ValidationError`` on ``tx``, and nothing reaches the server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from shared_db.client import Database, Transaction
from shared_db.errors import SharedDbError, ValidationError
from shared_db.records import UserRecord
from shared_db.repositories import Repositories
from shared_db.sql import QueryEvent
from tests.conftest import Stores
from tests.factories import PASSWORD_HASH

ENDED = r"^tx: the transaction has already ended \({}\): start a new one with " \
        r"`async with db.transaction\(\) as tx:`; nothing was sent$"
NOT_STARTED = r"^tx: the transaction has not started: use it inside " \
              r"`async with db.transaction\(\) as tx:`; nothing was sent$"

Use = Callable[[Transaction], Awaitable[object]]


async def make_user(source: Repositories, email: str) -> UserRecord:
    """A user made on the Database or inside a transaction (hash precomputed: no bcrypt)."""
    return await source.users.create(email=email, password_hash=PASSWORD_HASH, name="U",
                                     role="CUSTOMER")


async def _create(tx: Transaction) -> object:
    return await tx.users.create(email="late@example.com", password="password123", name="L",
                                 role="CUSTOMER")


async def _create_hashed(tx: Transaction) -> object:
    return await make_user(tx, "late2@example.com")


async def _get(tx: Transaction) -> object:
    return await tx.users.get(uuid.uuid4())


async def _payment_read(tx: Transaction) -> object:
    return await tx.payments.get(uuid.uuid4())


async def _executor(tx: Transaction) -> object:
    async with tx.executor("auth") as ex:
        return await ex.connection.execute("SELECT 1")


async def _unit(tx: Transaction) -> object:
    async with tx.unit() as nested:
        return await nested.users.get(uuid.uuid4())


async def _enter(tx: Transaction) -> object:
    async with tx as again:
        return await _create(again)


USES: list[tuple[str, Use]] = [
    ("users.create", _create), ("users.create with a hash", _create_hashed),
    ("users.get", _get), ("payments.get", _payment_read), ("executor", _executor),
    ("unit", _unit),
]
AFTER: list[tuple[str, Use]] = [*USES, ("async with again", _enter)]


def _users(stores: Stores) -> int:
    with psycopg.connect(stores.url("auth"), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM users").fetchone()
    assert row is not None
    return int(row[0])


def _idle_in_transaction(stores: Stores) -> int:
    """Sessions on the test's databases left inside a transaction (pooled or not)."""
    found = 0
    for url in dict.fromkeys(stores.urls.values()):
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()").fetchone()
        assert row is not None
        found += int(row[0])
    return found


async def _refused(tx: Transaction, pattern: str, stores: Stores,
                   statements: list[QueryEvent], uses: list[tuple[str, Use]] = AFTER) -> None:
    """Every use of ``tx`` is ValidationError matching ``pattern``; nothing is sent or kept."""
    before, sent = stores.digest(), len(statements)
    for name, use in uses:
        with pytest.raises(ValidationError, match=pattern) as refused:
            await use(tx)
        assert refused.value.field == "tx", name
        assert isinstance(refused.value, SharedDbError), name
    assert len(statements) == sent, statements[sent:]
    assert stores.digest() == before
    assert _idle_in_transaction(stores) == 0


async def _still_writable(db: Database) -> None:
    """The late email was never taken nor locked: a new create of it goes through at once."""
    user = await asyncio.wait_for(make_user(db, "late@example.com"), timeout=10)
    assert (await db.users.get(user.id)) is not None


async def test_an_empty_committed_block_refuses_every_later_use(
        db: Database, stores: Stores, statements: list[QueryEvent]) -> None:
    async with db.transaction() as tx:
        pass
    await _refused(tx, ENDED.format("committed"), stores, statements)
    assert _users(stores) == 0
    await _still_writable(db)


async def test_a_block_that_wrote_and_committed_refuses_every_later_use(
        db: Database, stores: Stores, statements: list[QueryEvent]) -> None:
    async with db.transaction() as tx:
        kept = await make_user(tx, "kept@example.com")
    await _refused(tx, ENDED.format("committed"), stores, statements)
    assert _users(stores) == 1
    assert (await db.users.get(kept.id)) is not None
    await _still_writable(db)


async def test_a_block_rolled_back_by_its_exception_refuses_every_later_use(
        db: Database, stores: Stores, statements: list[QueryEvent]) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction() as tx:
            await make_user(tx, "gone@example.com")
            raise RuntimeError("boom")
    await _refused(tx, ENDED.format("rolled back"), stores, statements)
    assert _users(stores) == 0
    await _still_writable(db)


async def test_a_failed_statement_ends_it_rolled_back(
        db: Database, stores: Stores, statements: list[QueryEvent]) -> None:
    await make_user(db, "taken@example.com")
    with pytest.raises(SharedDbError):
        async with db.transaction() as tx:
            await make_user(tx, "fresh@example.com")
            await make_user(tx, "taken@example.com")  # DuplicateError
    await _refused(tx, ENDED.format("rolled back"), stores, statements)
    assert _users(stores) == 1


async def test_use_before_the_block_is_refused_and_the_block_still_works(
        db: Database, stores: Stores, statements: list[QueryEvent]) -> None:
    tx = db.transaction()
    await _refused(tx, NOT_STARTED, stores, statements, USES)
    assert _users(stores) == 0
    async with tx:  # refusing it early did not spoil it
        user = await make_user(tx, "on-time@example.com")
    assert (await db.users.get(user.id)) is not None
    assert _users(stores) == 1 and _idle_in_transaction(stores) == 0


async def test_entering_an_open_transaction_again_is_refused_and_rolls_it_back(
        db: Database, stores: Stores) -> None:
    with pytest.raises(ValidationError, match=r"^tx: the transaction is already open"):
        async with db.transaction() as tx:
            await make_user(tx, "inner@example.com")
            async with tx:
                pass
    assert _users(stores) == 0 and _idle_in_transaction(stores) == 0


async def test_an_executor_taken_in_the_block_is_refused_after_it(
        db: Database, stores: Stores) -> None:
    async with db.transaction() as tx:
        await tx.users.get(uuid.uuid4())  # its auth connection is taken
        late = tx.executor("auth")
        other = tx.executor("payments")
    for cm in (late, other):
        with pytest.raises(ValidationError, match=ENDED.format("committed")):
            async with cm as ex:
                await ex.connection.execute("SELECT 1")
    assert _users(stores) == 0 and _idle_in_transaction(stores) == 0


async def test_a_transaction_of_run_is_refused_after_it(db: Database, stores: Stores) -> None:
    kept: list[Transaction] = []

    async def work(tx: Transaction) -> None:
        kept.append(tx)

    await db.run(work)
    with pytest.raises(ValidationError, match=ENDED.format("committed")):
        await _create(kept[0])
    assert _users(stores) == 0 and _idle_in_transaction(stores) == 0


async def test_tasks_sharing_a_transaction_share_its_connection_and_commit(db: Database) -> None:
    # Each task opened a connection of its own for the transaction, the last replacing the
    # others, whose writes went back to the pool uncommitted: rolled back, every call "done".
    user = await db.users.create(email="shared-tx@example.com", password_hash=PASSWORD_HASH,
                                 name="N", role="CUSTOMER")
    async with db.transaction() as tx:
        payments = await asyncio.gather(*(tx.payments.create(user.id, str(n), type="payment")
                                          for n in range(1, 5)))
        audits = await asyncio.gather(*(tx.audit.record(f"probe.{n}") for n in range(4)))
    for payment in payments:
        assert await db.payments.get(payment.id) is not None
    since = datetime.now(UTC) - timedelta(hours=1)
    assert len(audits) == 4
    for n in range(4):
        assert len(await db.audit.by_action(f"probe.{n}", since)) == 1
    with pytest.raises(ValueError, match="boom"):  # and roll back together
        async with db.transaction() as tx:
            await asyncio.gather(*(tx.audit.record("probe.rolled") for _ in range(3)))
            raise ValueError("boom")
    assert await db.audit.by_action("probe.rolled", since) == []
