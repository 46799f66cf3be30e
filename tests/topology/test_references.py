"""The guarantees of the cross-service foreign keys, on both topologies (and through PgBouncer).

Per service ``payments.user_id`` and ``user_profiles.user_id`` are checked references, not
foreign keys; the same calls must fail with the same typed errors and write nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from shared_db.client import Database
from shared_db.errors import ForeignKeyError, NotFoundError, QueryTimeoutError
from tests.conftest import Stores
from tests.factories import PASSWORD_HASH

CREATORS: dict[str, Callable[[Database, uuid.UUID], Awaitable[Any]]] = {
    "payment": lambda db, uid: db.payments.create(uid, Decimal("1.00"), type="payment"),
    "profile": lambda db, uid: db.profiles.create(uid, bio="x"),
    "device": lambda db, uid: db.devices.register(uid, f"dev-{uid}"),
    "token": lambda db, uid: db.tokens.issue(uid),
}


@pytest.mark.parametrize("kind", CREATORS)
async def test_rows_for_missing_or_deleted_users_are_refused(db: Database, stores: Stores,
                                                             kind: str) -> None:
    gone = await db.users.create(email="gone@example.com", password_hash=PASSWORD_HASH, name="G",
                                 role="CUSTOMER")
    await db.users.soft_delete(gone.id)
    before = stores.digest()
    for user_id in (uuid.uuid4(), gone.id):
        with pytest.raises(NotFoundError, match="does not exist or is deleted"):
            await CREATORS[kind](db, user_id)
    assert stores.digest() == before


async def test_hard_delete_does_what_the_foreign_keys_did(db: Database, stores: Stores) -> None:
    user = await db.users.create(email="u@example.com", password_hash=PASSWORD_HASH, name="U",
                                 role="CUSTOMER")
    await db.profiles.create(user.id, bio="hi")
    device = await db.devices.register(user.id, "phone")
    token = await db.tokens.issue(user.id)
    await db.sessions.open(user.id, device.id, refresh_token_id=token.record.id)
    payment = await db.payments.create(user.id, Decimal("2.00"), type="payment")
    before = stores.digest()
    with pytest.raises(ForeignKeyError, match="payments_user_id_fkey"):
        await db.users.delete(user.id)
    assert stores.digest() == before  # RESTRICT: nothing went, in any database
    async with db.transaction() as tx, tx.executor("payments") as ex:
        await ex.connection.execute("DELETE FROM payments WHERE id = %s", (payment.id,))
    await db.users.delete(user.id)
    after = stores.digest()
    for table in ("users", "user_profiles", "devices", "sessions", "refresh_tokens"):
        assert after[table][0] == 0, table
    assert [r.action for r in await db.audit.for_resource("user", user.id)][-1] == "user.deleted"


async def test_writers_for_one_user_share_its_lock_and_a_delete_waits(db: Database) -> None:
    """The lock a foreign-key check takes, on either topology: FOR KEY SHARE lets writers for
    one user run side by side, and makes a delete of that user wait for them."""
    user = await db.users.create(email="shared@example.com", password_hash=PASSWORD_HASH,
                                 name="S", role="CUSTOMER")
    async with db.transaction() as tx:
        await tx.payments.create(user.id, Decimal("1.00"), type="payment")
        # Another writer for the user is not held up by the open transaction's lock.
        other = await asyncio.wait_for(
            db.payments.create(user.id, Decimal("2.00"), type="payment"), timeout=10)
        assert other.amount == Decimal("2.00")
        with pytest.raises(QueryTimeoutError):
            async with db.transaction(lock_timeout=0.2) as deleting:
                await deleting.users.delete(user.id)
    assert len((await db.payments.page(user.id)).items) == 2
