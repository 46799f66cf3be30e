"""Rules spanning services for profiles: a user and their profile are created together."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared_db.admin.repository import APPEND as AUDIT_APPEND
from shared_db.auth.users import CREATE as CREATE_USER
from shared_db.enums import UserRole
from shared_db.profile.repository import CREATE_FOR_LIVE_USER, FIELDS, profile_values
from shared_db.records import ProfileRecord, UserRecord
from shared_db.sql import pipelined

if TYPE_CHECKING:
    from shared_db.repository import Source


async def create_user_with_profile(source: Source, *, email: str, name: str,
                                   role: UserRole | str, password: str | None = None,
                                   password_hash: str | None = None,
                                   email_verified: bool = False,
                                   profile: dict[str, Any] | None = None,
                                   ) -> tuple[UserRecord, ProfileRecord]:
    """The guide's 6.1 example: the user, its audit row and its profile, or none of them.

    When the three tables share one database the three inserts travel in one round trip.
    """
    async with source.unit() as tx:
        params = await tx.users.new_user(email=email, name=name, role=role, password=password,
                                         password_hash=password_hash,
                                         email_verified=email_verified)
        values = {n: None for n in FIELDS} | profile_values(profile or {}) | {
            "user_id": params["id"]}
        if not (tx.same_database("auth", "admin") and tx.same_database("auth", "profile")):
            user = await tx.users.create(email=email, name=name, role=role,
                                         password_hash=params["password_hash"],
                                         email_verified=email_verified)
            return user, await tx.profiles.create(user.id, **(profile or {}))
        audit = tx.users.created_audit(tx, params)
        async with tx.executor("auth") as ex, pipelined(ex):
            users = await ex.cursor(CREATE_USER, params, UserRecord)
            await ex.cursor(AUDIT_APPEND, audit)
            profiles = await ex.cursor(CREATE_FOR_LIVE_USER, values, ProfileRecord)
        user, created = await users.fetchone(), await profiles.fetchone()
    assert user is not None and created is not None
    return user, created
