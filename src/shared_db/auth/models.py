"""Auth service tables: users, refresh_tokens, devices, sessions (guide 2.3 and 11.1)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Text, UniqueConstraint, false, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared_db.base import (
    Base,
    CreatedAt,
    IdempotencyKeyColumns,
    UpdatedAt,
    UUIDPrimaryKey,
    owned_by,
)
from shared_db.enums import UserRole, pg_enum


def _cascade(column: str) -> ForeignKey:
    """The guide's ``onDelete: Cascade`` (Prisma also cascades key updates)."""
    return ForeignKey(column, ondelete="CASCADE", onupdate="CASCADE")


class User(UUIDPrimaryKey, CreatedAt, UpdatedAt, Base):
    """An account. ``deleted_at`` set means soft-deleted (guide 11.1)."""

    __tablename__ = "users"
    __table_args__ = owned_by(
        "auth",
        UniqueConstraint("email"),
        Index(None, "email"),
        Index(None, "role"),
        Index(None, "deleted_at"),
    )

    email: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    """bcrypt hash (cost 10); the plaintext password is never stored."""
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[UserRole] = mapped_column(pg_enum(UserRole))
    email_verified: Mapped[bool] = mapped_column(default=False, server_default=false())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    refresh_tokens: Mapped[list[RefreshToken]] = relationship(
        back_populates="user", passive_deletes=True
    )
    sessions: Mapped[list[UserSession]] = relationship(back_populates="user", passive_deletes=True)
    devices: Mapped[list[Device]] = relationship(back_populates="user", passive_deletes=True)


class RefreshToken(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "refresh_tokens"
    __table_args__ = owned_by("auth", UniqueConstraint("token"), Index(None, "user_id"),
                              Index(None, "token"))

    user_id: Mapped[uuid.UUID] = mapped_column(_cascade("users.id"))
    token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(back_populates="refresh_tokens")


class Device(UUIDPrimaryKey, Base):
    __tablename__ = "devices"
    __table_args__ = owned_by("auth", UniqueConstraint("device_id"), Index(None, "user_id"),
                              Index(None, "device_id"))

    user_id: Mapped[uuid.UUID] = mapped_column(_cascade("users.id"))
    device_id: Mapped[str] = mapped_column(Text)
    """The client's own identifier for the device, not this table's key."""
    device_name: Mapped[str | None] = mapped_column(Text)
    device_type: Mapped[str | None] = mapped_column(Text)
    last_active_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    user: Mapped[User] = relationship(back_populates="devices")
    sessions: Mapped[list[UserSession]] = relationship(
        back_populates="device", passive_deletes=True
    )


class UserSession(UUIDPrimaryKey, CreatedAt, Base):
    """The guide's ``Session`` model; named so it never shadows ``sqlalchemy.orm.Session``."""

    __tablename__ = "sessions"
    __table_args__ = owned_by("auth", Index(None, "user_id"), Index(None, "device_id"),
                              Index(None, "expires_at"))

    user_id: Mapped[uuid.UUID] = mapped_column(_cascade("users.id"))
    device_id: Mapped[uuid.UUID] = mapped_column(_cascade("devices.id"))
    """Key of the ``devices`` row (not the client's ``devices.device_id``)."""
    refresh_token_id: Mapped[uuid.UUID | None]
    ip_address: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(back_populates="sessions")
    device: Mapped[Device] = relationship(back_populates="sessions")


class AuthIdempotencyKey(IdempotencyKeyColumns, Base):
    __tablename__ = "auth_idempotency_keys"
    __table_args__ = owned_by("auth", Index(None, "expires_at"))
