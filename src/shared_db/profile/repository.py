"""User profiles: create (with its user in one transaction), get, update."""

from __future__ import annotations

import uuid
from functools import lru_cache
from operator import attrgetter
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import ARRAY, Uuid, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert

from shared_db import validation as check
from shared_db.auth.models import User
from shared_db.errors import NotFoundError, ValidationError
from shared_db.profile.models import UserProfile
from shared_db.records import ProfileRecord
from shared_db.references import insert_for_live_user
from shared_db.repository import Repository, point_lookup
from shared_db.sql import Query, columns

_PROFILE = columns(ProfileRecord, UserProfile)
LIMITS = {"avatar_url": 2048, "phone": 50, "address": 1000, "bio": 5000}
FIELDS = (*LIMITS, "preferences")

CREATE = Query.build("profiles.create", insert(UserProfile).values(
    id=func.gen_random_uuid(), user_id=bindparam("user_id"),
    **{name: bindparam(name) for name in FIELDS}).returning(*_PROFILE))
GET = Query.build("profiles.get", select(*_PROFILE).where(
    UserProfile.user_id == bindparam("user_id")))
BY_USER = point_lookup("profile", GET, Query.build("profiles.get.many", select(*_PROFILE).where(
    UserProfile.user_id == func.any(bindparam("keys", type_=ARRAY(Uuid))))), "user_id",
    ProfileRecord, attrgetter("user_id"))
CREATE_FOR_LIVE_USER = Query.build("profiles.create_for_live_user", insert(UserProfile).from_select(
    ["id", "user_id", *FIELDS],
    select(func.gen_random_uuid(), User.id, *[bindparam(n, type_=UserProfile.__table__.c[n].type)
                                             for n in FIELDS]).where(
        User.id == bindparam("user_id"), User.deleted_at.is_(None)),
).returning(*_PROFILE))


@lru_cache(maxsize=64)
def _update_query(names: tuple[str, ...]) -> Query:
    return Query.build("profiles.update", update(UserProfile).where(
        UserProfile.user_id == bindparam("user_id")).values(
        updated_at=func.now(), **{n: bindparam(n) for n in names}).returning(*_PROFILE))


def profile_values(changes: dict[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """Validated profile fields, JSON wrapped for psycopg. Errors name ``prefix`` + the field,
    or ``where`` (the parameter holding them) for a name that is no field."""
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if not isinstance(name, str):
            raise ValidationError(where, "keys must be field names")
        if name == "preferences":
            prefs = check.json_object(prefix + name, value)
            values[name] = None if prefs is None else Jsonb(prefs)
        elif name in LIMITS:
            values[name] = check.optional_text(prefix + name, value, max_length=LIMITS[name])
        else:
            raise ValidationError(where, f"{check.shown(name)} is not a profile field; choose "
                                  f"from {', '.join(FIELDS)}")
    return values


class ProfileRepository(Repository):
    service = "profile"

    async def create(self, user_id: uuid.UUID, **fields: Any) -> ProfileRecord:
        """The profile of a live user (fields: avatar_url, phone, address, bio, preferences).

        Raises:
            NotFoundError: the user does not exist or is deleted.
            DuplicateError: the user has a profile already (field ``user_id``).
        """
        params = {name: None for name in FIELDS} | profile_values(fields, "fields") | {
            "user_id": user_id}
        return await insert_for_live_user(self._source, self.service, CREATE_FOR_LIVE_USER,
                                          CREATE, params, ProfileRecord)

    async def get(self, user_id: uuid.UUID) -> ProfileRecord | None:
        return await self._lookup(BY_USER, user_id)

    async def update(self, user_id: uuid.UUID, **changes: Any) -> ProfileRecord:
        """Change only the named fields; ``preferences`` is replaced as a whole."""
        if not changes:
            raise ValidationError("changes", "name at least one field to change")
        values = profile_values(changes, "changes")
        async with self._write() as ex:
            profile = await ex.one(_update_query(tuple(sorted(values))),
                                   values | {"user_id": user_id}, ProfileRecord)
        if profile is None:
            raise NotFoundError(f"user {user_id} has no profile")
        return profile
