"""A transaction a call inside left unable to commit rolls everything back and says so.

The probe that found it: a caller caught a ``DuplicateError`` inside ``async with
db.transaction()`` and went on; PostgreSQL had aborted the transaction, its COMMIT rolled back
without an error, and the block reported success with the user written before it gone. Per
service, the aborted part's PREPARE vanished, its COMMIT PREPARED failed as "stays prepared
until recovery", and the profile and audit row committed without their user. A call cut off by
``asyncio.wait_for`` could also be committed while its caller had been told it failed. Now the
block raises ``TransactionAbortedError`` and nothing is committed, in every topology.
"""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from shared_db.auth.batch import NewUser
from shared_db.calls import commit
from shared_db.client import Database
from shared_db.errors import (
    DuplicateError,
    NotFoundError,
    TransactionAbortedError,
    TransientConflictError,
)
from tests.conftest import Stores
from tests.factories import PASSWORD_HASH


def _prepared(stores: Stores) -> list[str]:
    found = []
    for url in dict.fromkeys(stores.urls.values()):
        with psycopg.connect(url) as conn:
            found += [g for (g,) in conn.execute("SELECT gid FROM pg_prepared_xacts WHERE "
                                                 "database = current_database()")]
    return found


def _user(email: str) -> dict[str, str]:
    return {"email": email, "password_hash": PASSWORD_HASH, "name": "U", "role": "CUSTOMER"}


async def test_a_caught_failure_inside_rolls_the_whole_transaction_back(
        db: Database, stores: Stores) -> None:
    await db.users.create(**_user("taken@example.com"))
    before = stores.digest()
    with pytest.raises(TransactionAbortedError, match="DuplicateError") as caught:
        async with db.transaction() as tx:
            kept = await tx.users.create(**_user("first@example.com"))
            await tx.profiles.create(kept.id, preferences={})
            with pytest.raises(DuplicateError):
                await tx.users.create(**_user("taken@example.com"))
            with pytest.raises(TransactionAbortedError):  # every later use says why
                await tx.audit.record("after.failure", resource_type="x", resource_id="1")
    assert "nothing in it was committed" in str(caught.value)
    assert stores.digest() == before
    assert await db.users.get_by_email("first@example.com") is None
    assert not _prepared(stores)


async def test_an_error_raised_after_a_good_statement_leaves_it_able_to_commit(
        db: Database) -> None:
    missing = uuid.UUID(int=1)
    async with db.transaction() as tx:
        kept = await tx.users.create(**_user("fine@example.com"))
        with pytest.raises(NotFoundError):
            await tx.users.get_one(missing)
        with pytest.raises(NotFoundError):  # raised inside its statement's block
            await tx.users.update(missing, name="Nobody")
    assert await db.users.get(kept.id) is not None


async def test_a_refusal_beside_another_task_s_statement_leaves_it_able_to_commit(
        db: Database) -> None:
    user = await db.users.create(**_user("beside@example.com"))
    for _ in range(5):  # the refusal may come while the payment's INSERT is on the wire
        async with db.transaction() as tx:
            found = await asyncio.gather(tx.users.update(uuid.UUID(int=2), name="N"),
                                         tx.payments.create(user.id, "1.00", type="payment"),
                                         return_exceptions=True)
        assert isinstance(found[0], NotFoundError), found
    assert len((await db.payments.page(user.id, limit=10)).items) == 5


async def test_a_commit_the_server_answers_with_rollback_raises(db: Database) -> None:
    pool = db.pool("auth")
    async with pool.connection() as conn:
        await conn.execute("BEGIN")
        with pytest.raises(psycopg.errors.DivisionByZero):
            await conn.execute("SELECT 1/0")
        with pytest.raises(TransactionAbortedError, match="rolled the transaction back"):
            await commit(conn)


async def test_a_call_cut_off_inside_commits_nothing(db: Database, stores: Stores) -> None:
    before = stores.digest()
    many = [NewUser(email=f"cut{n}@example.com", password_hash=PASSWORD_HASH, name="C",
                    role="CUSTOMER") for n in range(3000)]
    for timeout in (0.0005, 0.005, 0.02, 0.08):
        try:
            async with db.transaction() as tx:
                await tx.users.create(**_user(f"before{timeout}@example.com"))
                try:
                    await asyncio.wait_for(tx.users.create_many(many), timeout)
                except TimeoutError:
                    pass
                else:
                    raise AssertionError("not cut off")  # the test needs a cut
        except TransactionAbortedError as exc:
            assert "was cut off (CancelledError" in str(exc)
        except AssertionError:  # it finished in time: the block rolled back on the raise
            pass
        assert stores.digest() == before, timeout
    assert not _prepared(stores)


@pytest.mark.shared_only
async def test_a_transient_first_failure_stays_transient_for_retries(
        db: Database, stores: Stores) -> None:
    await db.config.set("limit", 1)
    with pytest.raises(TransientConflictError, match="rolled back"):
        async with db.transaction(isolation="repeatable read") as tx:
            assert await tx.config.value("limit") == 1  # the snapshot is taken here
            with psycopg.connect(stores.urls["admin"], autocommit=True) as other:
                other.execute("UPDATE system_config SET value = '2' WHERE key = 'limit'")
            with pytest.raises(TransientConflictError):
                await tx.config.set("limit", 3)
    assert await db.config.value("limit") == 2
