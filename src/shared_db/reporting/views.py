"""The ``payment_reports`` view (guide 7.1) as typed rows; its DDL lives in the links chain."""

from __future__ import annotations

from sqlalchemy import BigInteger, Numeric, Text, Uuid, bindparam, column, select, table

from shared_db import validation as check
from shared_db.enums import UserRole, pg_enum
from shared_db.records import PaymentReport
from shared_db.repository import Repository
from shared_db.sql import Query

payment_reports = table(
    "payment_reports",
    column("user_id", Uuid()), column("email", Text()), column("role", pg_enum(UserRole)),
    column("total_payments", BigInteger()), column("total_amount", Numeric()),
    column("avg_amount", Numeric()),
)
_ROWS = select(*payment_reports.c).order_by(payment_reports.c.email)
ALL = Query.build("reports.payment_reports", _ROWS)
BY_ROLE = Query.build("reports.payment_reports.role", _ROWS.where(
    payment_reports.c.role == bindparam("role")))


class ReportRepository(Repository):
    service = "payments"

    async def payment_reports(self, role: UserRole | str | None = None) -> list[PaymentReport]:
        """Payments per user (count, sum, average), optionally for one role, by email."""
        async with self._read() as ex:
            if role is None:
                return await ex.all(ALL, {}, PaymentReport)
            return await ex.all(BY_ROLE, {"role": check.member("role", role, UserRole)},
                                PaymentReport)
