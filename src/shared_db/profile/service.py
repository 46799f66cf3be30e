"""Rules spanning services for profiles: a user and their profile are created together.

Where users, audit_logs and user_profiles share a database, the three rows are written by one
statement (data-modifying CTEs): atomic on its own, so it needs no BEGIN and COMMIT and costs
one round trip. The profile's foreign key to the new user holds, since PostgreSQL checks it when
the statement ends. Elsewhere the rows go to their own databases in one two-phase transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, insert, select

from shared_db.auth.statements import AUDITED, NEW_USER, audited
from shared_db.auth.users import UserRepository, user_request
from shared_db.enums import UserRole
from shared_db.idempotency import key, once
from shared_db.profile.models import UserProfile
from shared_db.profile.repository import FIELDS, ProfileRepository, profile_values
from shared_db.records import ProfileRecord, UserRecord
from shared_db.repository import Source
from shared_db.sql import Query, columns
from shared_db.typed import checked

_NEW_PROFILE = insert(UserProfile).from_select(
    ["id", "user_id", *FIELDS],
    select(func.gen_random_uuid(), NEW_USER.c.id,
           *[bindparam(n, type_=UserProfile.__table__.c[n].type) for n in FIELDS]),
).returning(*columns(ProfileRecord, UserProfile)).cte("new_profile")
CREATE_WITH_PROFILE = Query.build("users.create_with_profile", select(
    *NEW_USER.c, *_NEW_PROFILE.c).add_cte(AUDITED))
_SPLIT = len(UserRecord._fields)


def _pair(*values: Any) -> tuple[UserRecord, ProfileRecord]:
    return UserRecord(*values[:_SPLIT]), ProfileRecord(*values[_SPLIT:])



@checked
async def create_user_with_profile(source: Source, *, email: str, name: str,
                                   role: UserRole | str, password: str | None = None,
                                   password_hash: str | None = None,
                                   email_verified: bool = False,
                                   profile: dict[str, Any] | None = None,
                                   idempotency_key: str | None = None,
                                   ) -> tuple[UserRecord, ProfileRecord]:
    """The guide's 6.1 example: the user, its audit row and its profile, or none of them.

    When the three tables share one database the three inserts travel in one round trip.
    ``idempotency_key`` makes it exactly once (``shared_db.idempotency``), kept in auth's
    database: a repeat with the same key returns the user and profile the first call made.
    """
    params = await UserRepository(source)._new_user(
        email=email, name=name, role=role, password=password, password_hash=password_hash,
        email_verified=email_verified)
    values = {n: None for n in FIELDS} | profile_values(profile or {}, "profile", "profile.")
    fields = profile or {}
    if idempotency_key is None:
        return await _create(source, params, values, fields)
    request = user_request(params) | {"profile": fields}
    return await once(source.unit, "auth", key(idempotency_key), "create_user_with_profile",
                      request, lambda tx: _create(tx, params, values, fields))


async def _create(source: Source, params: dict[str, Any], values: dict[str, Any],
                  fields: dict[str, Any]) -> tuple[UserRecord, ProfileRecord]:
    if not (source.same_database("auth", "admin") and source.same_database("auth", "profile")):
        async with source.unit() as tx:
            user = await UserRepository(tx)._insert(params)
            return user, await ProfileRepository(tx).create(user.id, **fields)
    audit = UserRepository(source)._created_audit(source, params)
    statement = audited(params, audit) | values
    async with source.executor("auth", primary=True) as ex:
        created = await ex.one(CREATE_WITH_PROFILE, statement, _pair)
    assert created is not None
    return created
