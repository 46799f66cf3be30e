"""Checked references: what the cross-service foreign keys do, when services have own databases.

In the shared topology ``payments.user_id`` and ``user_profiles.user_id`` are foreign keys to
``users`` (RESTRICT and CASCADE, guide 2.3). Per service they cannot be: ``users`` lives in the
auth database. These functions keep the same guarantees inside one (two-phase) transaction:

* a row naming a user is written only after that user is locked ``FOR KEY SHARE`` in auth,
  the same lock a foreign-key check takes, so the user cannot be deleted until it commits;
* deleting a user locks it ``FOR UPDATE`` first (which waits for those writers), then refuses
  when payments name it, removes its profile, and deletes it.

The errors are the shared topology's: ``NotFoundError`` for a missing or soft-deleted user,
``ForeignKeyError`` naming ``payments_user_id_fkey`` when payments block a delete.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import bindparam, delete, literal_column, select

from shared_db.auth.models import User
from shared_db.errors import ForeignKeyError, NotFoundError
from shared_db.payments.models import Payment
from shared_db.profile.models import UserProfile
from shared_db.repository import Source
from shared_db.sql import Query

T = TypeVar("T")
_ID = User.id == bindparam("user_id")
LOCK_LIVE_USER = Query.build("references.lock_live_user", select(User.id).where(
    _ID, User.deleted_at.is_(None)).with_for_update(read=True, key_share=True))
LOCK_FOR_DELETE = Query.build("references.lock_for_delete", select(User.id).where(
    _ID).with_for_update())
HAS_PAYMENTS = Query.build("references.has_payments", select(literal_column("1")).where(
    Payment.user_id == bindparam("user_id")).limit(literal_column("1")))
DELETE_PROFILE = Query.build("references.delete_profile", delete(UserProfile).where(
    UserProfile.user_id == bindparam("user_id")))
DELETE_USER = Query.build("references.delete_user", delete(User).where(_ID))


async def lock_live_user(tx: Source, user_id: uuid.UUID) -> None:
    """Hold the user against deletion until ``tx`` ends.

    Raises:
        NotFoundError: no such user, or it is soft-deleted.
    """
    async with tx.executor("auth") as auth:
        if await auth.scalar(LOCK_LIVE_USER, {"user_id": user_id}) is None:
            raise NotFoundError(f"user {user_id} does not exist or is deleted")


async def insert_for_live_user(source: Source, service: str, joined: Query, plain: Query,
                               params: Mapping[str, Any], record: type[T]) -> T:
    """Insert the row of ``joined`` / ``plain`` that names ``params["user_id"]``, a live user.

    Where users shares the database, ``joined`` is one ``INSERT ... SELECT FROM users`` (its
    foreign-key check locks the user) and runs on its own; elsewhere the user is locked in auth
    first and ``plain`` inserts, in one (two-phase) transaction.

    Raises:
        NotFoundError: no such user, or it is soft-deleted.
    """
    if source.same_database("auth", service):
        async with source.executor(service, primary=True) as ex:
            row = await ex.one(joined, params, record)
    else:
        async with source.unit() as tx:
            await lock_live_user(tx, params["user_id"])
            async with tx.executor(service) as ex:
                row = await ex.one(plain, params, record)
    if row is None:
        raise NotFoundError(f"user {params['user_id']} does not exist or is deleted")
    return row


async def delete_user(tx: Source, user_id: uuid.UUID) -> None:
    """``DELETE FROM users`` with the shared foreign keys' effects, across databases.

    Raises:
        NotFoundError: no such user.
        ForeignKeyError: payments name the user (RESTRICT).
    """
    params = {"user_id": user_id}
    async with tx.executor("auth") as auth:
        if await auth.scalar(LOCK_FOR_DELETE, params) is None:
            raise NotFoundError(f"user {user_id} does not exist")
    async with tx.executor("payments") as payments:
        if await payments.scalar(HAS_PAYMENTS, params) is not None:
            raise ForeignKeyError('payments_user_id_fkey: update or delete on table "users" '
                                  'violates RESTRICT setting of foreign key constraint '
                                  '"payments_user_id_fkey" on table "payments"')
    async with tx.executor("profile") as profile:
        await profile.execute(DELETE_PROFILE, params)
    async with tx.executor("auth") as auth:  # tokens, devices, sessions: foreign keys in auth
        await auth.execute(DELETE_USER, params)
