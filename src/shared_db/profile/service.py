"""Rules spanning services for profiles: a user and their profile are created together."""

from __future__ import annotations

from typing import Any

from shared_db.admin.repository import APPEND as AUDIT_APPEND
from shared_db.auth.users import CREATE as CREATE_USER
from shared_db.auth.users import UserRepository, user_request
from shared_db.enums import UserRole
from shared_db.idempotency import key, once
from shared_db.profile.repository import (
    CREATE_FOR_LIVE_USER,
    FIELDS,
    ProfileRepository,
    profile_values,
)
from shared_db.records import ProfileRecord, UserRecord
from shared_db.repository import Source
from shared_db.sql import pipelined
from shared_db.typed import checked


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
    values = {n: None for n in FIELDS} | profile_values(profile or {}, "profile", "profile.") | {
        "user_id": params["id"]}
    fields = profile or {}
    if idempotency_key is None:
        return await _create(source, params, values, fields)
    request = user_request(params) | {"profile": fields}
    return await once(source.unit, "auth", key(idempotency_key), "create_user_with_profile",
                      request, lambda tx: _create(tx, params, values, fields))


async def _create(source: Source, params: dict[str, Any], values: dict[str, Any],
                  fields: dict[str, Any]) -> tuple[UserRecord, ProfileRecord]:
    async with source.unit() as tx:
        if not (tx.same_database("auth", "admin") and tx.same_database("auth", "profile")):
            user = await UserRepository(tx)._insert(params)
            return user, await ProfileRepository(tx).create(user.id, **fields)
        audit = UserRepository(tx)._created_audit(tx, params)
        async with tx.executor("auth") as ex, pipelined(ex):
            users = await ex.cursor(CREATE_USER, params, UserRecord)
            await ex.cursor(AUDIT_APPEND, audit)
            profiles = await ex.cursor(CREATE_FOR_LIVE_USER, values, ProfileRecord)
        user, created = await users.fetchone(), await profiles.fetchone()
    assert user is not None and created is not None
    return user, created
