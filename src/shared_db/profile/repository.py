"""Queries on the profile service's table."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from shared_db.profile.models import UserProfile
from shared_db.repository import Repository, translate_db_errors


class UserProfileRepository(Repository):
    async def get_by_user_id(self, user_id: uuid.UUID) -> UserProfile | None:
        query = select(UserProfile).where(UserProfile.user_id == user_id)
        return (await self.session.scalars(query)).first()

    async def add_if_absent(self, user_id: uuid.UUID, values: dict[str, Any]) -> bool:
        """Create ``user_id``'s profile unless it has one; True when a row was written."""
        statement = (insert(UserProfile).values(user_id=user_id, **values)
                     .on_conflict_do_nothing(index_elements=[UserProfile.user_id])
                     .returning(UserProfile.id))
        with translate_db_errors():
            return (await self.session.execute(statement)).scalar_one_or_none() is not None
