"""Automatic batching: concurrent point reads on the Database share one statement, with the
results, errors and isolation each call would have had alone."""

from __future__ import annotations

import asyncio
import gc
import uuid
from decimal import Decimal

import psycopg
import pytest

from shared_db.client import Database
from shared_db.errors import SharedDbError, ValidationError
from shared_db.records import UserRecord
from shared_db.sql import QueryEvent
from tests.conftest import Stores
from tests.factories import make_user


async def _users(db: Database, count: int) -> list[UserRecord]:
    return [await make_user(db, f"b{i}@example.com", name=f"B{i}") for i in range(count)]


def _names(statements: list[QueryEvent]) -> list[str]:
    return [event.name for event in statements]


async def test_concurrent_gets_share_one_statement_and_each_gets_its_own_row(
        db: Database, statements: list[QueryEvent]) -> None:
    users = await _users(db, 6)
    gone = await db.users.soft_delete(users[5].id)
    missing = uuid.uuid4()
    asked = [u.id for u in users] + [missing, users[0].id, users[2].id]
    alone = [await db.users.get(i) for i in asked]
    statements.clear()
    together = await asyncio.gather(*(db.users.get(i) for i in asked))
    assert together == alone
    assert together[5] is None and together[6] is None and together[7] == users[0]
    assert _names(statements) == ["users.get.many"]
    statements.clear()
    deleted = await asyncio.gather(*(db.users.get(i, include_deleted=True) for i in asked))
    assert deleted[5] == gone and _names(statements) == ["users.get_any.many"]


async def test_a_call_alone_runs_its_own_statement(
        db: Database, statements: list[QueryEvent]) -> None:
    (user,) = await _users(db, 1)
    statements.clear()
    assert await db.users.get(user.id) == user
    assert await db.users.get_by_email("B0@Example.com") == user
    assert _names(statements) == ["users.get", "users.by_email"]


async def test_emails_profiles_payments_and_eager_loads_are_shared_too(
        db: Database, stores: Stores, statements: list[QueryEvent]) -> None:
    users = await _users(db, 4)
    payment = await db.payments.create(users[0].id, Decimal("5.00"), type="payment")
    profile = await db.profiles.create(users[1].id, bio="hello")
    statements.clear()
    emails = await asyncio.gather(*(db.users.get_by_email(f"B{i}@EXAMPLE.com")
                                    for i in range(5)))
    assert emails == [*users, None]
    payments = await asyncio.gather(db.payments.get(payment.id), db.payments.get(uuid.uuid4()))
    assert payments == [payment, None]
    profiles = await asyncio.gather(*(db.profiles.get(u.id) for u in users[:2]))
    assert profiles == [None, profile]
    eager = await asyncio.gather(*(db.users.eager(u.id) for u in users))
    assert [e.user for e in eager if e] == users
    assert eager[0] and eager[0].payments == (payment,) and eager[1] and eager[1].profile == profile
    eager_statements = 3 if stores.topology == "per-service" else 1  # its databases: 3 or 1
    assert _names(statements)[:3] == [
        "users.by_email.many", "payments.get.many", "profiles.get.many"]
    assert len(statements) == 3 + eager_statements


async def test_callers_of_one_key_get_a_row_each(db: Database) -> None:
    (user,) = await _users(db, 1)
    await db.profiles.create(user.id, preferences={"theme": "dark"})
    first, second = await asyncio.gather(db.profiles.get(user.id), db.profiles.get(user.id))
    assert first == second and first is not None and second is not None
    first.preferences["theme"] = "changed by one request"
    assert second.preferences == {"theme": "dark"}  # the other request's row is its own


async def test_reads_inside_a_transaction_are_never_shared(
        db: Database, statements: list[QueryEvent]) -> None:
    users = await _users(db, 3)
    statements.clear()
    async with db.transaction() as tx:
        found = await asyncio.gather(*(tx.users.get(u.id) for u in users))
    assert found == users
    assert _names(statements).count("users.get") == 3
    assert "users.get.many" not in _names(statements)


async def test_a_bad_argument_fails_only_its_own_call(db: Database) -> None:
    users = await _users(db, 2)
    results = await asyncio.gather(db.users.get(users[0].id), db.users.get("nope"),  # type: ignore[arg-type]
                                   db.users.get(users[1].id), return_exceptions=True)
    assert results[0] == users[0] and results[2] == users[1]
    assert isinstance(results[1], ValidationError) and results[1].field == "user_id"


async def test_a_cancelled_first_caller_leaves_the_others_served(db: Database) -> None:
    users = await _users(db, 3)
    first = asyncio.create_task(db.users.get(users[0].id))
    others = [asyncio.create_task(db.users.get(u.id)) for u in users[1:]]
    await asyncio.sleep(0)  # all started: the first waits for company, the others joined it
    first.cancel()
    assert await asyncio.gather(*others) == users[1:]
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_cancelled_first_caller_leaves_no_error_unread(db: Database) -> None:
    users = await _users(db, 2)
    loop = asyncio.get_running_loop()
    unread: list[object] = []
    loop.set_exception_handler(lambda _, context: unread.append(context["message"]))
    url = db.connection_settings("auth").libpq_url()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute("ALTER TABLE users RENAME TO users_away")  # the shared read fails
        try:
            first = asyncio.create_task(db.users.get(users[0].id))
            other = asyncio.create_task(db.users.get(users[1].id))
            await asyncio.sleep(0)
            first.cancel()
            with pytest.raises(SharedDbError):
                await other
            with pytest.raises(asyncio.CancelledError):
                await first
        finally:
            await admin.execute("ALTER TABLE users_away RENAME TO users")
    del first, other
    gc.collect()
    loop.set_exception_handler(None)
    assert unread == []  # no "Future exception was never retrieved" for the cancelled caller


async def test_callers_in_a_loop_keep_sharing_one_statement_per_round(
        db: Database, statements: list[QueryEvent]) -> None:
    users = await _users(db, 8)
    statements.clear()

    async def caller(user: UserRecord) -> list[UserRecord | None]:
        return [await db.users.get(user.id) for _ in range(4)]

    rounds = await asyncio.gather(*(caller(u) for u in users))
    assert rounds == [[u] * 4 for u in users]
    # The caller who opened a batch wakes with the others, in time to join the next one.
    assert _names(statements) == ["users.get.many"] * 4
