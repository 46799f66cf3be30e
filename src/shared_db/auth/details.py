"""A user's editable details (name, email_verified), changed with their audit row.

Email, role, password and the timestamps have their own rules elsewhere (``set_role``, the
email's uniqueness); this is only what an operator may correct by hand.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, func, select, update

from shared_db import validation as check
from shared_db.admin.repository import AuditRepository
from shared_db.auth.lookups import ID_IS, LIVE, USER_COLUMNS
from shared_db.auth.models import User
from shared_db.errors import NotFoundError, ValidationError
from shared_db.records import UserRecord
from shared_db.repository import Source
from shared_db.sql import Query

CURRENT = Query.build("users.details_for_update", select(*USER_COLUMNS).where(
    ID_IS, LIVE).with_for_update())
UPDATE = Query.build("users.update_details", update(User).where(ID_IS).values(
    name=bindparam("name"), email_verified=bindparam("email_verified"), updated_at=func.now(),
).returning(*USER_COLUMNS))


async def update_details(source: Source, user_id: uuid.UUID, name: str | None,
                         email_verified: bool | None) -> UserRecord:
    """Set the given fields of a live user; audited as ``user.updated`` with old and new.

    Values equal to the stored ones change nothing: no write, no ``updated_at``, no audit row.
    """
    if name is None and email_verified is None:
        raise ValidationError("name", "give name or email_verified (or both)")
    new_name = None if name is None else check.text("name", name, max_length=200)
    verified = None if email_verified is None else check.flag("email_verified", email_verified)
    async with source.unit() as tx:
        async with tx.executor("auth") as ex:
            old = await ex.one(CURRENT, {"id": user_id}, UserRecord)
            if old is None:
                raise NotFoundError(f"user {user_id} does not exist or is deleted")
            wanted = {"name": new_name, "email_verified": verified}
            changes: dict[str, Any] = {
                field: {"old": getattr(old, field), "new": value}
                for field, value in wanted.items()
                if value is not None and value != getattr(old, field)}
            if not changes:
                return old
            params = {"id": user_id, "name": old.name, "email_verified": old.email_verified,
                      **{field: change["new"] for field, change in changes.items()}}
            user = await ex.one(UPDATE, params, UserRecord)
        assert user is not None
        await AuditRepository(tx).append("user.updated", resource_type="user",
                                         resource_id=user_id, details=changes,
                                         user_id=tx.actor().actor_id or user_id)
    return user
