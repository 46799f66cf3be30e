"""Every model, imported together so the mapper registry and ``Base.metadata`` are complete."""

from shared_db.admin.models import AuditLog, SystemConfig
from shared_db.auth.models import Device, RefreshToken, User, UserSession
from shared_db.base import Base
from shared_db.payments.models import Payment, PaymentTransaction
from shared_db.profile.models import UserProfile

__all__ = [
    "AuditLog",
    "Base",
    "Device",
    "Payment",
    "PaymentTransaction",
    "RefreshToken",
    "SystemConfig",
    "User",
    "UserProfile",
    "UserSession",
]
