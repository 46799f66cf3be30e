"""The guide's enums, as Python enums mapped onto PostgreSQL enum types of the same names."""

from __future__ import annotations

import enum

from sqlalchemy import Enum


class UserRole(enum.StrEnum):
    ADMIN = "ADMIN"
    CUSTOMER = "CUSTOMER"
    VENDOR = "VENDOR"


class PaymentStatus(enum.StrEnum):
    pending = "pending"
    initiated = "initiated"
    processing = "processing"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


class PaymentType(enum.StrEnum):
    initiate = "initiate"
    payment = "payment"


def pg_enum(python_enum: type[enum.StrEnum]) -> Enum:
    """A PostgreSQL enum type named like the Python class, labels in declaration order."""
    return Enum(
        python_enum,
        name=python_enum.__name__,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )
