"""shared-db: the PostgreSQL data layer of the auth, payments, admin and profile services.

The names below are imported on first use (PEP 562), so ``import shared_db.errors`` or the
command line's ``--help`` do not load the pools, the models or SQLAlchemy's async layer.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_HOMES = {
    "NewUser": "shared_db.auth.batch",
    "Database": "shared_db.client", "Transaction": "shared_db.client",
    "Settings": "shared_db.config", "load_settings": "shared_db.config",
    "ActorContext": "shared_db.context", "acting_as": "shared_db.context",
    "PaymentStatus": "shared_db.enums", "PaymentType": "shared_db.enums",
    "UserRole": "shared_db.enums",
    **dict.fromkeys(("AuditLog", "Base", "Device", "Payment", "PaymentTransaction",
                     "RefreshToken", "SystemConfig", "User", "UserProfile", "UserSession"),
                    "shared_db.models"),
    "create_user_with_profile": "shared_db.profile.service",
}

__all__ = [
    "ActorContext",
    "AuditLog",
    "Base",
    "Database",
    "Device",
    "NewUser",
    "Payment",
    "PaymentStatus",
    "PaymentTransaction",
    "PaymentType",
    "RefreshToken",
    "Settings",
    "SystemConfig",
    "Transaction",
    "User",
    "UserProfile",
    "UserRole",
    "UserSession",
    "acting_as",
    "create_user_with_profile",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shared_db' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


if TYPE_CHECKING:
    from shared_db.auth.batch import NewUser
    from shared_db.client import Database, Transaction
    from shared_db.config import Settings, load_settings
    from shared_db.context import ActorContext, acting_as
    from shared_db.enums import PaymentStatus, PaymentType, UserRole
    from shared_db.models import (
        AuditLog,
        Base,
        Device,
        Payment,
        PaymentTransaction,
        RefreshToken,
        SystemConfig,
        User,
        UserProfile,
        UserSession,
    )
    from shared_db.profile.service import create_user_with_profile
