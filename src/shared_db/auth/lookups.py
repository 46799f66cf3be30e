"""The users' point reads that callers outside a transaction share (``shared_db.batching``):
by id, by email, and the eager load, each as one statement for one key and one for many."""

from __future__ import annotations

import uuid
from functools import lru_cache
from operator import attrgetter

from sqlalchemy import ARRAY, String, Uuid, bindparam, func, select

from shared_db.auth.eager import load_across, load_with_relations
from shared_db.auth.models import User
from shared_db.batching import Lookup
from shared_db.records import UserRecord, UserWithRelations
from shared_db.repository import Source, point_lookup
from shared_db.sql import Query, columns

# The users' columns and conditions every users statement is built from (users.py, details.py).
USER_COLUMNS = columns(UserRecord, User)
LIVE = User.deleted_at.is_(None)
ID_IS = User.id == bindparam("id")
EMAIL_IS = User.email == bindparam("email")
_ANY_ID = User.id == func.any(bindparam("keys", type_=ARRAY(Uuid)))
_ANY_EMAIL = User.email == func.any(bindparam("keys", type_=ARRAY(String)))

GET = Query.build("users.get", select(*USER_COLUMNS).where(ID_IS, LIVE))
GET_ANY = Query.build("users.get_any", select(*USER_COLUMNS).where(ID_IS))
BY_EMAIL = Query.build("users.by_email", select(*USER_COLUMNS).where(EMAIL_IS, LIVE))
BY_EMAIL_ANY = Query.build("users.by_email_any", select(*USER_COLUMNS).where(EMAIL_IS))

_id, _email = attrgetter("id"), attrgetter("email")
BY_ID: Lookup[uuid.UUID, UserRecord] = point_lookup(
    "auth", GET, Query.build("users.get.many", select(*USER_COLUMNS).where(_ANY_ID, LIVE)),
    "id", UserRecord, _id)
BY_ID_ANY: Lookup[uuid.UUID, UserRecord] = point_lookup(
    "auth", GET_ANY, Query.build("users.get_any.many", select(*USER_COLUMNS).where(_ANY_ID)),
    "id", UserRecord, _id)
# Matched back on the stored email, which is what the statement's plain = compared.
EMAIL: Lookup[str, UserRecord] = point_lookup(
    "auth", BY_EMAIL, Query.build("users.by_email.many", select(*USER_COLUMNS).where(
        _ANY_EMAIL, LIVE)), "email", UserRecord, _email)
EMAIL_ANY: Lookup[str, UserRecord] = point_lookup(
    "auth", BY_EMAIL_ANY, Query.build("users.by_email_any.many", select(*USER_COLUMNS).where(
        _ANY_EMAIL)), "email", UserRecord, _email)


async def eager_load(source: Source, user_ids: list[uuid.UUID], n: int,
                     ) -> list[UserWithRelations]:
    """Users with profile and newest ``n`` payments, wherever those tables live."""
    if not (source.same_database("auth", "profile")
            and source.same_database("auth", "payments")):
        return await load_across(source, user_ids, n)
    async with source.executor("auth") as ex:
        return await load_with_relations(ex, user_ids, n)


@lru_cache(maxsize=101)  # one per payments count (1 to 100)
def eager(n: int) -> Lookup[uuid.UUID, UserWithRelations]:
    async def one(source: Source, user_id: uuid.UUID) -> UserWithRelations | None:
        found = await eager_load(source, [user_id], n)
        return found[0] if found else None

    async def many(source: Source, user_ids: list[uuid.UUID]) -> dict[uuid.UUID,
                                                                       UserWithRelations]:
        return {item.user.id: item for item in await eager_load(source, user_ids, n)}

    return Lookup(f"users.eager.{n}", one, many)
