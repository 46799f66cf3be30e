"""shared-db: the PostgreSQL data layer of the auth, payments, admin and profile services."""

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

__all__ = [
    "AuditLog",
    "Base",
    "Device",
    "Payment",
    "PaymentStatus",
    "PaymentTransaction",
    "PaymentType",
    "RefreshToken",
    "SystemConfig",
    "User",
    "UserProfile",
    "UserRole",
    "UserSession",
]
