"""Admin service tables: audit_logs and system_config (guide 2.3 and 11.2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared_db.base import Base, CreatedAt, IdempotencyKeyColumns, UUIDPrimaryKey, owned_by


class AuditLog(UUIDPrimaryKey, CreatedAt, Base):
    """One recorded action. ``user_id`` has no foreign key: the trail outlives its users."""

    __tablename__ = "audit_logs"
    __table_args__ = owned_by(
        "admin", Index(None, "user_id"), Index(None, "created_at"), Index(None, "action")
    )

    user_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(Text)
    resource_type: Mapped[str | None] = mapped_column(Text)
    resource_id: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    """What changed, as JSON (e.g. ``{"amount": "10.00"}``)."""
    ip_address: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(Text)


class SystemConfig(Base):
    __tablename__ = "system_config"
    __table_args__ = owned_by("admin")

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    description: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    updated_by: Mapped[str | None] = mapped_column(Text)


class AdminIdempotencyKey(IdempotencyKeyColumns, Base):
    __tablename__ = "admin_idempotency_keys"
    __table_args__ = owned_by("admin", Index(None, "expires_at"))
