"""Immutable, typed results of the data-access API (what Prisma's generated types are)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from shared_db.enums import PaymentStatus, PaymentType, UserRole

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user without ``password_hash``: the safe projection every read returns."""

    id: uuid.UUID
    email: str
    name: str
    role: UserRole
    email_verified: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    id: uuid.UUID
    user_id: uuid.UUID
    avatar_url: str | None
    phone: str | None
    address: str | None
    bio: str | None
    preferences: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    id: uuid.UUID
    user_id: uuid.UUID
    amount: Decimal
    currency: str
    status: PaymentStatus
    type: PaymentType
    description: str | None
    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentTransactionRecord:
    id: uuid.UUID
    payment_id: uuid.UUID
    transaction_type: str
    amount: Decimal
    status: str
    metadata: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserWithRelations:
    """The guide's eager load: a user, their profile and their newest payments."""

    user: UserRecord
    profile: ProfileRecord | None
    payments: tuple[PaymentRecord, ...]


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """A stored refresh token; ``token`` is never here: the table keeps only its hash."""

    id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A refresh token as handed to a client, once: ``token`` is the only plaintext copy."""

    token: str
    record: RefreshTokenRecord


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    id: uuid.UUID
    user_id: uuid.UUID
    device_id: str
    device_name: str | None
    device_type: str | None
    last_active_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: uuid.UUID
    user_id: uuid.UUID
    device_id: uuid.UUID
    refresh_token_id: uuid.UUID | None
    ip_address: str | None
    user_agent: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: uuid.UUID
    user_id: uuid.UUID | None
    action: str
    resource_type: str | None
    resource_id: str | None
    details: dict[str, Any] | None
    ip_address: str | None
    user_agent: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConfigRecord:
    key: str
    value: Any
    description: str | None
    updated_at: datetime
    updated_by: str | None


@dataclass(frozen=True, slots=True)
class PaymentReport:
    """A row of the ``payment_reports`` view (guide 7.1)."""

    user_id: uuid.UUID
    email: str
    role: UserRole
    total_payments: int
    total_amount: Decimal | None
    avg_amount: Decimal | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results. ``next_cursor`` is opaque; None means there is nothing after."""

    items: tuple[T, ...]
    next_cursor: str | None = None
    total: int | None = None
