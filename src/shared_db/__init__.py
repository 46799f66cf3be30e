"""shared-db: the PostgreSQL data layer of the auth, payments, admin and profile services."""

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
