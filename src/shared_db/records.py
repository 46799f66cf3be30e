"""Immutable, typed results of the data-access API (what Prisma's generated types are).

Rows are ``NamedTuple``s: immutable and typed like frozen dataclasses, but built five times
faster (a frozen dataclass sets each field through ``object.__setattr__``), which matters when a
page maps dozens of rows. Results that group rows are frozen dataclasses.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar

from shared_db.enums import PaymentStatus, PaymentType, UserRole

T = TypeVar("T")


class UserRecord(NamedTuple):
    """A user without ``password_hash``: the safe projection every read returns."""

    id: uuid.UUID
    email: str
    name: str
    role: UserRole
    email_verified: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class ProfileRecord(NamedTuple):
    id: uuid.UUID
    user_id: uuid.UUID
    avatar_url: str | None
    phone: str | None
    address: str | None
    bio: str | None
    preferences: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class PaymentRecord(NamedTuple):
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


class PaymentTransactionRecord(NamedTuple):
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


class RefreshTokenRecord(NamedTuple):
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


class DeviceRecord(NamedTuple):
    id: uuid.UUID
    user_id: uuid.UUID
    device_id: str
    device_name: str | None
    device_type: str | None
    last_active_at: datetime
    created_at: datetime


class SessionRecord(NamedTuple):
    id: uuid.UUID
    user_id: uuid.UUID
    device_id: uuid.UUID
    refresh_token_id: uuid.UUID | None
    ip_address: str | None
    user_agent: str | None
    created_at: datetime
    expires_at: datetime


class AuditRecord(NamedTuple):
    id: uuid.UUID
    user_id: uuid.UUID | None
    action: str
    resource_type: str | None
    resource_id: str | None
    details: dict[str, Any] | None
    ip_address: str | None
    user_agent: str | None
    created_at: datetime


class ConfigRecord(NamedTuple):
    key: str
    value: Any
    description: str | None
    updated_at: datetime
    updated_by: str | None


class PaymentReport(NamedTuple):
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
