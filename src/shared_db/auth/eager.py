"""The guide's eager load (``include: { profile, payments: { take: 10 } }``) without N+1.

Two statements for any number of users, sent together in one pipeline round trip: users with
their profiles (one LEFT JOIN), and each user's newest payments through a LATERAL subquery.
Per service (three databases) it is three statements in two round trips: the live users from
auth, then their profiles and payments from the other two databases at the same time.
"""

from __future__ import annotations

import asyncio
import uuid
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import ARRAY, Uuid, bindparam, func, literal_column, select, true

from shared_db.auth.models import User
from shared_db.payments.models import Payment
from shared_db.profile.models import UserProfile
from shared_db.records import PaymentRecord, ProfileRecord, UserRecord, UserWithRelations
from shared_db.sql import Executor, Query, columns, pipelined

if TYPE_CHECKING:
    from shared_db.repository import Source

_USER = columns(UserRecord, User)
_PROFILE = columns(ProfileRecord, UserProfile)
_PAYMENT = columns(PaymentRecord, Payment)
_N_USER = len(UserRecord._fields)

USERS_WITH_PROFILES = Query.build("users.eager.profiles", select(*_USER, *_PROFILE).outerjoin(
    UserProfile, UserProfile.user_id == User.id).where(
    User.id == func.any(bindparam("ids", type_=ARRAY(Uuid))), User.deleted_at.is_(None)))

# One user: plain equality, which plans better than the array forms below.
USER_WITH_PROFILE = Query.build("users.eager.profile", select(*_USER, *_PROFILE).outerjoin(
    UserProfile, UserProfile.user_id == User.id).where(
    User.id == bindparam("id"), User.deleted_at.is_(None)))


@lru_cache(maxsize=16)
def user_payments(n: int) -> Query:
    """Newest ``n`` payments of one user; ``n`` is part of the statement so the planner sees it
    (a parameterised LIMIT leads generic plans to expect far more rows)."""
    return Query.build(f"users.eager.user_payments.{n}", select(*_PAYMENT).where(
        Payment.user_id == bindparam("id")).order_by(
        Payment.created_at.desc(), Payment.id.desc()).limit(literal_column(str(int(n)))))

LIVE_USERS = Query.build("users.eager.users", select(*_USER).where(
    User.id == func.any(bindparam("ids", type_=ARRAY(Uuid))), User.deleted_at.is_(None)))
PROFILES = Query.build("users.eager.profiles_only", select(*_PROFILE).where(
    UserProfile.user_id == func.any(bindparam("ids", type_=ARRAY(Uuid)))))

_ids = func.unnest(bindparam("ids", type_=ARRAY(Uuid))).table_valued("id").render_derived(
    name="wanted")
_newest = select(*_PAYMENT).where(Payment.user_id == _ids.c.id).order_by(
    Payment.created_at.desc(), Payment.id.desc()).limit(bindparam("n")).lateral("newest")
NEWEST_PAYMENTS = Query.build("users.eager.payments", select(_newest).select_from(
    _ids.join(_newest, true())))


async def load_with_relations(ex: Executor, user_ids: list[uuid.UUID], n: int,
                              ) -> list[UserWithRelations]:
    """Users (in ``user_ids`` order, missing and soft-deleted ones left out) with relations."""
    if not user_ids:
        return []
    params: dict[str, object] = {"ids": user_ids, "n": n}
    queries = (USERS_WITH_PROFILES, NEWEST_PAYMENTS)
    if len(user_ids) == 1:
        params, queries = {"id": user_ids[0]}, (USER_WITH_PROFILE, user_payments(n))
    async with pipelined(ex):
        users_cursor = await ex.cursor(queries[0], params)
        payments_cursor = await ex.cursor(queries[1], params, PaymentRecord)
    rows = await users_cursor.fetchall()
    payments: dict[uuid.UUID, list[PaymentRecord]] = {}
    for payment in await payments_cursor.fetchall():
        payments.setdefault(payment.user_id, []).append(payment)
    found: dict[uuid.UUID, UserWithRelations] = {}
    for row in rows:
        user = UserRecord(*row[:_N_USER])
        profile = ProfileRecord(*row[_N_USER:]) if row[_N_USER] is not None else None
        found[user.id] = UserWithRelations(user, profile, tuple(payments.get(user.id, ())))
    return [found[i] for i in user_ids if i in found]


async def load_across(source: Source, user_ids: list[uuid.UUID], n: int,
                      ) -> list[UserWithRelations]:
    """``load_with_relations`` when users, profiles and payments are in three databases."""
    if not user_ids:
        return []
    async with source.executor("auth") as auth:
        users = await auth.all(LIVE_USERS, {"ids": user_ids}, UserRecord)
    live = [user.id for user in users]
    if not live:
        return []

    async def profiles() -> list[ProfileRecord]:
        async with source.executor("profile") as ex:
            return await ex.all(PROFILES, {"ids": live}, ProfileRecord)

    async def payments() -> list[PaymentRecord]:
        async with source.executor("payments") as ex:
            return await ex.all(NEWEST_PAYMENTS, {"ids": live, "n": n}, PaymentRecord)

    found_profiles, found_payments = await asyncio.gather(profiles(), payments())
    by_user = {profile.user_id: profile for profile in found_profiles}
    newest: dict[uuid.UUID, list[PaymentRecord]] = {}
    for payment in found_payments:
        newest.setdefault(payment.user_id, []).append(payment)
    found = {user.id: UserWithRelations(user, by_user.get(user.id),
                                        tuple(newest.get(user.id, ()))) for user in users}
    return [found[i] for i in user_ids if i in found]
