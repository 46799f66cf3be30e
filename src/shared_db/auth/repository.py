"""Queries on the auth service's tables."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from shared_db.auth.models import User
from shared_db.repository import Repository, translate_db_errors


class UserRepository(Repository):
    async def get_by_email(self, email: str, *, include_deleted: bool = False) -> User | None:
        """The user with ``email`` (compared case-insensitively), or None."""
        query = select(User).where(func.lower(User.email) == email.lower())
        if not include_deleted:
            query = query.where(User.deleted_at.is_(None))
        return (await self.session.scalars(query)).first()

    async def add_if_absent(self, values: dict[str, Any]) -> uuid.UUID | None:
        """Insert a user unless the email exists; the new id, or None when it existed."""
        statement = (insert(User).values(**values)
                     .on_conflict_do_nothing(index_elements=[User.email])
                     .returning(User.id))
        with translate_db_errors():
            return (await self.session.execute(statement)).scalar_one_or_none()
