"""Profile service table: user_profiles (guide 2.3)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared_db.base import (
    Base,
    CreatedAt,
    IdempotencyKeyColumns,
    UpdatedAt,
    UUIDPrimaryKey,
    owned_by,
)


class UserProfile(UUIDPrimaryKey, CreatedAt, UpdatedAt, Base):
    __tablename__ = "user_profiles"
    __table_args__ = owned_by("profile", UniqueConstraint("user_id"), Index(None, "user_id"))

    # Cross-service reference: the foreign key exists only in the shared topology (links chain).
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE", onupdate="CASCADE")
    )
    avatar_url: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    bio: Mapped[str | None] = mapped_column(Text)
    preferences: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class ProfileIdempotencyKey(IdempotencyKeyColumns, Base):
    __tablename__ = "profile_idempotency_keys"
    __table_args__ = owned_by("profile", Index(None, "expires_at"))
