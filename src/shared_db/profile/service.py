"""Rules spanning services for profiles: a user and their profile are created together."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared_db.enums import UserRole
from shared_db.records import ProfileRecord, UserRecord

if TYPE_CHECKING:
    from shared_db.repository import Source


async def create_user_with_profile(source: Source, *, email: str, password: str, name: str,
                                   role: UserRole | str, email_verified: bool = False,
                                   profile: dict[str, Any] | None = None,
                                   ) -> tuple[UserRecord, ProfileRecord]:
    """The guide's 6.1 example: both rows or neither (one transaction)."""
    async with source.unit() as tx:
        user = await tx.users.create(email=email, password=password, name=name, role=role,
                                     email_verified=email_verified)
        created = await tx.profiles.create(user.id, **(profile or {}))
    return user, created
