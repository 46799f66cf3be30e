"""Every repository, bound to one source (the Database or a Transaction)."""

from __future__ import annotations

from shared_db.admin.repository import AuditRepository, ConfigRepository
from shared_db.auth.repository import (
    DeviceRepository,
    RefreshTokenRepository,
    SessionRepository,
    UserRepository,
)
from shared_db.payments.repository import PaymentRepository
from shared_db.payments.service import PaymentStatusService
from shared_db.profile.repository import ProfileRepository
from shared_db.reporting.views import ReportRepository
from shared_db.repository import Source


class Repositories:
    """``users``, ``tokens``, ``devices``, ``sessions``, ``profiles``, ``payments``,
    ``payment_status``, ``audit``, ``config`` and ``reports``, all on one source."""

    def __init__(self, source: Source) -> None:
        self.users = UserRepository(source)
        self.tokens = RefreshTokenRepository(source)
        self.devices = DeviceRepository(source)
        self.sessions = SessionRepository(source)
        self.profiles = ProfileRepository(source)
        self.payments = PaymentRepository(source)
        self.payment_status = PaymentStatusService(source)
        self.audit = AuditRepository(source)
        self.config = ConfigRepository(source)
        self.reports = ReportRepository(source)
