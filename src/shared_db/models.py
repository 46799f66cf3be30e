"""Every model, imported together so the mapper registry and ``Base.metadata`` are complete."""

from shared_db.admin.models import AdminIdempotencyKey, AuditLog, SystemConfig
from shared_db.auth.models import AuthIdempotencyKey, Device, RefreshToken, User, UserSession
from shared_db.base import Base
from shared_db.payments.models import Payment, PaymentsIdempotencyKey, PaymentTransaction
from shared_db.profile.models import ProfileIdempotencyKey, UserProfile

__all__ = [
    "AdminIdempotencyKey",
    "AuditLog",
    "AuthIdempotencyKey",
    "Base",
    "Device",
    "Payment",
    "PaymentTransaction",
    "PaymentsIdempotencyKey",
    "ProfileIdempotencyKey",
    "RefreshToken",
    "SystemConfig",
    "User",
    "UserProfile",
    "UserSession",
]
