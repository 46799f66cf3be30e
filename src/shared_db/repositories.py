"""Every repository, bound to one source (the Database or a Transaction)."""

from __future__ import annotations

from functools import cached_property

from shared_db.admin.repository import AuditRepository, ConfigRepository
from shared_db.auth.repository import (
    DeviceRepository,
    RefreshTokenRepository,
    SessionRepository,
    UserRepository,
)
from shared_db.idempotency import IdempotencyRepository
from shared_db.payments.repository import PaymentRepository
from shared_db.payments.status import PaymentStatusService
from shared_db.profile.repository import ProfileRepository
from shared_db.reporting.views import ReportRepository
from shared_db.repository import Source


class Repositories:
    """``users``, ``tokens``, ``devices``, ``sessions``, ``profiles``, ``payments``,
    ``payment_status``, ``audit``, ``config``, ``reports`` and ``idempotency``, all on one
    source.

    Each is made on first use: a write method called on the Database opens a Transaction, and
    most use one or two of them.
    """

    def __init__(self, source: Source) -> None:
        self._source_of_repositories = source

    @cached_property
    def users(self) -> UserRepository:
        return UserRepository(self._source_of_repositories)

    @cached_property
    def tokens(self) -> RefreshTokenRepository:
        return RefreshTokenRepository(self._source_of_repositories)

    @cached_property
    def devices(self) -> DeviceRepository:
        return DeviceRepository(self._source_of_repositories)

    @cached_property
    def sessions(self) -> SessionRepository:
        return SessionRepository(self._source_of_repositories)

    @cached_property
    def profiles(self) -> ProfileRepository:
        return ProfileRepository(self._source_of_repositories)

    @cached_property
    def payments(self) -> PaymentRepository:
        return PaymentRepository(self._source_of_repositories)

    @cached_property
    def payment_status(self) -> PaymentStatusService:
        return PaymentStatusService(self._source_of_repositories)

    @cached_property
    def audit(self) -> AuditRepository:
        return AuditRepository(self._source_of_repositories)

    @cached_property
    def config(self) -> ConfigRepository:
        return ConfigRepository(self._source_of_repositories)

    @cached_property
    def reports(self) -> ReportRepository:
        return ReportRepository(self._source_of_repositories)

    @cached_property
    def idempotency(self) -> IdempotencyRepository:
        return IdempotencyRepository(self._source_of_repositories)
