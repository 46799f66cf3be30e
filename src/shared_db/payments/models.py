"""Payments service tables: payments and payment_transactions (guide 2.3 and 5.1)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared_db.base import (
    Base,
    CreatedAt,
    IdempotencyKeyColumns,
    UpdatedAt,
    UUIDPrimaryKey,
    owned_by,
)
from shared_db.enums import PaymentStatus, PaymentType, pg_enum


class Payment(UUIDPrimaryKey, CreatedAt, UpdatedAt, Base):
    """A payment. Deleting its user is refused while it exists, so money records never vanish."""

    __tablename__ = "payments"
    __table_args__ = owned_by(
        "payments",
        Index(None, "user_id"),
        Index(None, "status"),
        Index(None, "created_at"),
        Index(None, "user_id", "status"),
    )

    # Cross-service reference: the foreign key exists only in the shared topology (links chain).
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT", onupdate="CASCADE")
    )
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    currency: Mapped[str] = mapped_column(Text, default="USD", server_default=text("'USD'"))
    status: Mapped[PaymentStatus] = mapped_column(pg_enum(PaymentStatus))
    type: Mapped[PaymentType] = mapped_column(pg_enum(PaymentType))
    description: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    """Free-form JSON from the payment provider or caller."""

    transactions: Mapped[list[PaymentTransaction]] = relationship(
        back_populates="payment", passive_deletes=True
    )


class PaymentTransaction(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "payment_transactions"
    __table_args__ = owned_by("payments", Index(None, "payment_id"))

    payment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE", onupdate="CASCADE")
    )
    transaction_type: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    status: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)

    payment: Mapped[Payment] = relationship(back_populates="transactions")


class PaymentsIdempotencyKey(IdempotencyKeyColumns, Base):
    __tablename__ = "payments_idempotency_keys"
    __table_args__ = owned_by("payments", Index(None, "expires_at"))
